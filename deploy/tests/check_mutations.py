#!/usr/bin/env python3
"""Breaks copies of the rendered manifests and Cilium values one way at a time, and checks that
`calcmesh deploy check` fails with an error that names what was broken (and that the unbroken
copy has no such error).

    tests/check_mutations.py CALCMESH RENDERED_DIR
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

DEPLOY = pathlib.Path(__file__).resolve().parent.parent


def documents(text):
    return text.split("\n---\n")


def is_object(doc, kind, name):
    """Whether a document is that object; a generated ConfigMap's name has a hash suffix."""
    return (f"kind: {kind}\n" in doc
            and re.search(rf"\n  name: {re.escape(name)}(-[a-z0-9]{{10}})?\n", doc) is not None)


def edit_document(text, kind, name, old, new):
    """Replaces `old` by `new` in the one document of that kind and name."""
    docs = documents(text)
    for i, doc in enumerate(docs):
        if is_object(doc, kind, name):
            if old not in doc:
                raise SystemExit(f"mutation setup: '{old}' not in {kind} {name}")
            docs[i] = doc.replace(old, new, 1)
            return "\n---\n".join(docs)
    raise SystemExit(f"mutation setup: no {kind} {name}")


def drop_document(text, kind, name):
    docs = [d for d in documents(text) if not is_object(d, kind, name)]
    return "\n---\n".join(docs)


# (what is broken, file, edit, text the error must contain)
MUTATIONS = [
    ("Service selector typo", "c3a-workers.yaml",
     lambda t: edit_document(t, "Service", "addition-worker",
                             "  selector:\n    app.kubernetes.io/name: addition-worker",
                             "  selector:\n    app.kubernetes.io/name: addition-workr"),
     "c3a-workers.yaml: Service calcmesh/addition-worker: spec.selector: selects no pod"),
    ("ConfigMap key the binaries do not know", "c3a-workers.yaml",
     lambda t: edit_document(t, "ConfigMap", "addition-worker-config",
                             "  CALCMESH_OPERATION: addition\n",
                             "  CALCMESH_OPERATION: addition\n  CALCMESH_LOG_LEVL: debug\n"),
     "data.CALCMESH_LOG_LEVL: CALCMESH_LOG_LEVL is not a configuration key of worker"),
    ("pod-template label moved to the Deployment", "c1-client.yaml",
     lambda t: edit_document(t, "Deployment", "log-collector",
                             "        app.kubernetes.io/component: log-store\n", ""),
     "Deployment calcmesh/log-collector: spec.template.metadata.labels: missing "
     "app.kubernetes.io/component: it is on the Deployment only"),
    ("container port that is not the binary's", "c1-client.yaml",
     lambda t: edit_document(t, "Deployment", "log-collector",
                             "containerPort: 8082", "containerPort: 8083"),
     "8083, but log_collector listens on 8082"),
    ("entrypoint the image does not have", "c3a-workers.yaml",
     lambda t: edit_document(t, "Deployment", "addition-worker",
                             "/usr/local/bin/worker", "/usr/local/bin/wroker"),
     "/usr/local/bin/wroker is not copied into the image by Dockerfile"),
    ("serving Service not global", "c2-kafka.yaml",
     lambda t: edit_document(t, "Service", "kafka-0",
                             "    service.cilium.io/global: \"true\"\n", "    note: local\n"),
     "c2-kafka.yaml: Service calcmesh/kafka-0: metadata.annotations: c1-client calls it "
     "across the mesh"),
    ("calling cluster without the global Service", "c3b-workers.yaml",
     lambda t: drop_document(t, "Service", "log-collector"),
     "but c3b-workers.yaml has no Service calcmesh/log-collector"),
    ("broker advertising its pod name (only resolvable in c2-kafka)", "c2-kafka.yaml",
     lambda t: edit_document(t, "StatefulSet", "kafka",
                             "PLAINTEXT://kafka-0.calcmesh.svc.cluster.local:9092",
                             "PLAINTEXT://kafka-0.kafka.calcmesh.svc.cluster.local:9092"),
     "kafka (c2-kafka) advertises to job-submitter in c1-client "
     "kafka-0.kafka.calcmesh.svc.cluster.local:9092 but c1-client.yaml has no Service "
     "calcmesh/kafka"),
    ("affinity \"none\"", "c1-client.yaml",
     lambda t: edit_document(t, "Service", "addition-worker",
                             "    service.cilium.io/global: \"true\"\n",
                             "    service.cilium.io/affinity: none\n"
                             "    service.cilium.io/global: \"true\"\n"),
     "service.cilium.io/affinity: \"none\" drops every remote backend"),
    ("overlapping pod CIDRs", "cilium/c2-kafka.yaml",
     lambda t: t.replace("[198.18.144.0/20]", "[198.18.136.0/21]"),
     "198.18.136.0/21 overlaps 198.18.128.0/20 of c1-client"),
    ("duplicate cluster id", "cilium/c3b-workers.yaml",
     lambda t: t.replace("id: 4", "id: 3"),
     "cluster.id: 3 is also the id of c3a-workers"),
    ("native routing CIDR too small", "cilium/datapath-native.yaml",
     lambda t: t.replace("198.18.128.0/18", "198.18.128.0/20"),
     "ipv4NativeRoutingCIDR: 198.18.128.0/20 does not cover 198.18.144.0/20 of c2-kafka"),
]


def check(calcmesh, rendered, cilium):
    result = subprocess.run([calcmesh, "deploy", "check", "--rendered", str(rendered),
                             "--cilium", str(cilium), "--dockerfile", str(DEPLOY / "Dockerfile")],
                            capture_output=True, text=True, check=False)
    return result.returncode, result.stdout + result.stderr


def main():
    calcmesh, source = sys.argv[1], pathlib.Path(sys.argv[2])
    failures = 0
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        baseline_rendered, baseline_cilium = scratch / "rendered", scratch / "cilium"
        shutil.copytree(source, baseline_rendered)
        shutil.copytree(DEPLOY / "cilium", baseline_cilium)
        _, baseline = check(calcmesh, baseline_rendered, baseline_cilium)
        for what, file, edit, expected in MUTATIONS:
            case = scratch / "case"
            shutil.rmtree(case, ignore_errors=True)
            shutil.copytree(baseline_rendered, case / "rendered")
            shutil.copytree(baseline_cilium, case / "cilium")
            target = case / file if file.startswith("cilium/") else case / "rendered" / file
            target.write_text(edit(target.read_text()))
            status, output = check(calcmesh, case / "rendered", case / "cilium")
            if expected in baseline:
                print(f"FAIL {what}: the unbroken manifests already report '{expected}'")
                failures += 1
            elif status != 1 or expected not in output:
                print(f"FAIL {what}: exit {status}, no '{expected}' in:\n{output}")
                failures += 1
            else:
                line = next(l for l in output.splitlines() if expected in l)
                print(f"ok   {what}\n     {line}")
    print(f"{len(MUTATIONS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
