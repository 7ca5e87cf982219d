#!/usr/bin/env python3
"""Breaks copies of the rendered manifests and policies one way at a time, and checks that
`calcmesh policy lint` (what Cilium would reject, what is surely a mistake) or `calcmesh policy
matrix --expect` (drift from the intended matrix) fails with a line that names what was broken,
while the unbroken copy passes both.

    tests/mutations.py CALCMESH RENDERED_DIR
"""
import pathlib
import shutil
import subprocess
import sys
import tempfile

POLICIES = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "policies"
INTENDED = POLICIES / "intended-matrix.yaml"
PLATFORM = POLICIES / "platform.yaml"
KAFKA_L7 = POLICIES / "kafka-l7" / "c2-kafka.yaml"


def edit(text, kind, name, old, new, count=1):
    """Replaces `old` by `new` in the one document of that kind and name (`count` times)."""
    docs = text.split("\n---\n")
    for i, doc in enumerate(docs):
        if f"kind: {kind}\n" in doc and f"\n  name: {name}\n" in f"\n{doc}":
            if doc.count(old) < count:
                raise SystemExit(f"mutation setup: '{old}' not {count} times in {kind} {name}")
            docs[i] = doc.replace(old, new, count)
            return "\n---\n".join(docs)
    raise SystemExit(f"mutation setup: no {kind} {name}")


CNP = "CiliumNetworkPolicy"
POD_TEMPLATE_COMPONENT = "        app.kubernetes.io/component: worker\n"

# (what is broken, file, edit, command, text a line of the output must contain: a string, or a
# tuple of strings that must all be on that line)
MUTATIONS = [
    ("drop a rule: help_page's /about at the workers", "policies/c3a-workers.yaml",
     lambda t: edit(t, CNP, "worker", """  - fromEndpoints:
    - matchLabels:
        app.kubernetes.io/name: help-page
        io.cilium.k8s.policy.cluster: c1-client
    toPorts:
    - ports:
      - port: http
        protocol: TCP
      rules:
        http:
        - method: GET
          path: /about
""", ""),
     "matrix",
     ("differs: c1-client/help-page -> c3a-workers/addition-worker 8091/TCP: intended (flows[",
      "]) but dropped: egress: rule policies/c1-client.yaml: CiliumNetworkPolicy "
     "calcmesh/help-page: spec.egress[0].toPorts[0]; ingress: no rule allows it; default deny "
      "from policies/c3a-workers.yaml: CiliumClusterwideNetworkPolicy calcmesh-baseline: spec")),
    ("widen a selector: any calcmesh pod of c1-client may compute", "policies/c3a-workers.yaml",
     lambda t: edit(t, CNP, "worker", "        app.kubernetes.io/name: job-submitter\n",
                    "        app.kubernetes.io/part-of: calcmesh\n"),
     "matrix",
     ("differs: c1-client/help-page -> c3a-workers/addition-worker 8091/TCP GET "
      "/compute?a=7&b=2: must be refused (flows[",
      "]) but allowed: egress: rule policies/c1-client.yaml: CiliumNetworkPolicy "
      "calcmesh/help-page: spec.egress[0].toPorts[0]; ingress: rule policies/c3a-workers.yaml: "
      "CiliumNetworkPolicy calcmesh/worker: spec.ingress[0].toPorts[0].rules.http[0]")),
    ("move the component label from the pod templates to the Deployments", "c3a-workers.yaml",
     lambda t: edit(edit(t, "Deployment", "addition-worker", POD_TEMPLATE_COMPONENT, ""),
                    "Deployment", "subtraction-worker", POD_TEMPLATE_COMPONENT, ""),
     "lint",
     "error: policies/c3a-workers.yaml: CiliumNetworkPolicy calcmesh/worker: "
     "spec.endpointSelector: selects no pod in c3a-workers (app.kubernetes.io/component=worker, "
     "io.kubernetes.pod.namespace=calcmesh); c3a-workers.yaml: Deployment "
     "calcmesh/addition-worker, c3a-workers.yaml: Deployment calcmesh/subtraction-worker carry "
     "these labels on the object's own metadata.labels only"),
    ("the same, seen by the matrix", "c3a-workers.yaml",
     lambda t: edit(edit(t, "Deployment", "addition-worker", POD_TEMPLATE_COMPONENT, ""),
                    "Deployment", "subtraction-worker", POD_TEMPLATE_COMPONENT, ""),
     "matrix",
     "differs: c1-client/job-submitter -> c3a-workers/addition-worker 8091/TCP: intended"),
    ("invalid path regex", "policies/c3a-workers.yaml",
     lambda t: edit(t, CNP, "worker", "path: /compute([?].*)?", "path: /compute([?].*?"),
     "lint",
     "error: policies/c3a-workers.yaml: CiliumNetworkPolicy calcmesh/worker: "
     "spec.ingress[0].toPorts[0].rules.http[0].path: '/compute([?].*?' is not a POSIX extended "
     "regular expression"),
    ("L7 rules on a port without a protocol", "policies/c3a-workers.yaml",
     lambda t: edit(t, CNP, "worker", """      - port: http
        protocol: TCP
      rules:""", """      - port: http
      rules:"""),
     "lint",
     "error: policies/c3a-workers.yaml: CiliumNetworkPolicy calcmesh/worker: "
     "spec.ingress[0].toPorts[0].ports[0].protocol: missing: L7 rules need the protocol (TCP), "
     "and omitted means ANY"),
    ("a Kafka rule with both role and apiKey", "kafka-l7/c2-kafka.yaml",
     lambda t: t.replace("""              - role: produce
                topic: addition_requests
""", """              - role: produce
                apiKey: produce
                topic: addition_requests
""", 1),
     "lint",
     "error: kafka-l7/c2-kafka.yaml: CiliumNetworkPolicy calcmesh/kafka-clients: "
     "spec.ingress[0].toPorts[0].rules.kafka[0]: role and apiKey are exclusive"),
    ("an unknown field", "policies/c1-client.yaml",
     lambda t: edit(t, CNP, "log-collector", "    toPorts:\n", "    toPort:\n"),
     "lint",
     "error: policies/c1-client.yaml: CiliumNetworkPolicy calcmesh/log-collector: "
     "spec.ingress[0].toPort: unknown field (did you mean toPorts?)"),
    ("a port number that is not a string", "policies/c2-kafka.yaml",
     lambda t: edit(t, CNP, "kafka-clients", 'port: "9092"', "port: 9092"),
     "lint",
     "error: policies/c2-kafka.yaml: CiliumNetworkPolicy calcmesh/kafka-clients: "
     "spec.ingress[0].toPorts[0].ports[0].port: expected a string, got the integer 9092 "
     "(quote it: \"9092\")"),
    ("a selector that matches nothing (cluster name typo)", "policies/c1-client.yaml",
     lambda t: edit(t, CNP, "job-submitter", "io.cilium.k8s.policy.cluster: c2-kafka",
                    "io.cilium.k8s.policy.cluster: c2-kafak"),
     "lint",
     "error: policies/c1-client.yaml: CiliumNetworkPolicy calcmesh/job-submitter: "
     "spec.egress[4].toEndpoints[0]: matches no pod of any cluster (app.kubernetes.io/name=kafka, "
     "io.cilium.k8s.policy.cluster=c2-kafak, io.kubernetes.pod.namespace=calcmesh)"),
    ("a cross-cluster peer without the cluster label", "policies/c3a-workers.yaml",
     lambda t: edit(t, CNP, "worker", """        app.kubernetes.io/name: job-submitter
        io.cilium.k8s.policy.cluster: c1-client
""", """        app.kubernetes.io/name: job-submitter
"""),
     "lint",
     "error: policies/c3a-workers.yaml: CiliumNetworkPolicy calcmesh/worker: "
     "spec.ingress[0].fromEndpoints[0]: matches no pod of any cluster "
     "(app.kubernetes.io/name=job-submitter, io.cilium.k8s.policy.cluster=c3a-workers, "
     "io.kubernetes.pod.namespace=calcmesh); it would match c1-client/job-submitter, but a "
     "selector without io.cilium.k8s.policy.cluster means the policy's own cluster c3a-workers"),
    ("a toPorts port no selected pod listens on", "policies/c1-client.yaml",
     lambda t: edit(t, CNP, "log-collector", 'port: "8082"', 'port: "8083"', count=2),
     "lint",
     "error: policies/c1-client.yaml: CiliumNetworkPolicy calcmesh/log-collector: "
     "spec.ingress[0].toPorts[0].ports[0].port: no pod this policy selects listens on 8083/TCP "
     "(their ports: http=8082/TCP)"),
    ("Kafka L7 rules next to the L4 policy instead of replacing it", "kafka-l7/c2-kafka.yaml",
     lambda t: t.replace("  name: kafka-clients\n", "  name: kafka-clients-l7\n", 1),
     "lint",
     "error: kafka-l7/c2-kafka.yaml: CiliumNetworkPolicy calcmesh/kafka-clients-l7: "
     "spec.ingress[0].toPorts[0]: its L7 rules have no effect for c1-client/job-submitter on "
     "9092/TCP: policies/c2-kafka.yaml: CiliumNetworkPolicy calcmesh/kafka-clients: "
     "spec.ingress[0].toPorts[0] allows that peer and port without L7 rules"),
]


def run(calcmesh, root, command):
    args = [calcmesh, "policy", command, "--manifests", str(root / "manifests"),
            "--policies", str(root / "policies"), "--policies", str(root / "kafka-l7" / "c2-kafka.yaml"),
            "--platform", str(PLATFORM)]
    if command == "matrix":
        args += ["--expect", str(INTENDED)]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    return result.returncode, result.stdout + result.stderr


def copy_inputs(rendered, root):
    shutil.copytree(rendered, root / "manifests", ignore=shutil.ignore_patterns("policies"))
    shutil.copytree(rendered / "policies", root / "policies")
    (root / "kafka-l7").mkdir()
    shutil.copy(KAFKA_L7, root / "kafka-l7" / "c2-kafka.yaml")


def main():
    calcmesh, rendered = sys.argv[1], pathlib.Path(sys.argv[2])
    failures = 0
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        baseline = scratch / "baseline"
        copy_inputs(rendered, baseline)
        outputs = {}
        for command in ("lint", "matrix"):
            status, outputs[command] = run(calcmesh, baseline, command)
            if status != 0:
                print(f"FAIL the unbroken copy: calcmesh policy {command} exit {status}:\n"
                      f"{outputs[command]}")
                failures += 1
        for what, file, change, command, expected in MUTATIONS:
            case = scratch / "case"
            shutil.rmtree(case, ignore_errors=True)
            copy_inputs(rendered, case)
            target = case / (file if "/" in file else f"manifests/{file}")
            target.write_text(change(target.read_text()))
            status, output = run(calcmesh, case, command)
            parts = expected if isinstance(expected, tuple) else (expected,)

            def naming(text):
                return [l for l in text.splitlines() if all(part in l for part in parts)]

            if naming(outputs[command]):
                print(f"FAIL {what}: the unbroken copy already prints {parts}")
                failures += 1
            elif status != 1 or not naming(output):
                print(f"FAIL {what}: exit {status}, no line with {parts} in:\n{output}")
                failures += 1
            else:
                print(f"ok   {what} ({command})\n     {naming(output)[0]}")
    print(f"{len(MUTATIONS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
