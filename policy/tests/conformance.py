#!/usr/bin/env python3
"""calcmesh's policy engine against Cilium's own (cilium-engine: Cilium's policy repository, its
map state and its proxy's L7 matchers), pair by pair: `calcmesh policy matrix --all --json`
with each engine, for every variant of the kit and for each deliberately broken policy set of
tests/broken/ (applied over the Kafka L7 variant). On every pair that L7 rules restrict, the
requests of the intended matrix and a few more are decided too. Any difference fails, naming the
pair and both verdicts; so does a policy set only one engine refuses.

    tests/conformance.py --calcmesh BIN --cilium-engine BIN --rendered DIR --policies DIR \\
        --broken DIR [--only NAME]
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

import yaml

# Requests besides the intended matrix's: near misses of its rules (whole-path match, query
# strings, method), and Kafka requests of other API keys (topics the proxy reads or not).
EXTRA_PROBES = [
    "GET /compute", "GET /computex", "POST /compute?a=1&b=2", "GET /about?x=1", "GET /aboutx",
    "GET /jobs/j-1/x", "GET /jobs/", "PUT /submit", "GET /healthzx", "GET /logs", "GET /logsx",
    "POST /save_log?x=1", "DELETE /", "GET //",
    "produce results", "consume results", "produce addition_requests",
    "consume subtraction_requests", "metadata", "metadata results", "offsetforleaderepoch",
    "offsetforleaderepoch results", "initproducerid", "findcoordinator", "joingroup", "heartbeat",
    "syncgroup", "leavegroup", "apiversions", "listgroups", "describegroups",
    "createtopics results", "deletetopics results", "deleterecords results",
]


def probes(intended):
    flows = yaml.safe_load(intended.read_text())["flows"]
    found = []
    for flow in flows:
        for probe in flow.get("allow", []) + flow.get("deny", []):
            if probe not in found:
                found.append(probe)
    return found + [p for p in EXTRA_PROBES if p not in found]


def matrix(args, manifests, policies, options, probe_list, engine):
    command = [args.calcmesh, "policy", "matrix", "--manifests", str(manifests), "--policies",
               *map(str, policies), *options, "--all", "--json", "--engine", engine]
    if engine == "cilium":
        command += ["--cilium-engine", args.cilium_engine]
    for probe in probe_list:
        command += ["--probe", probe]
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    seconds = time.monotonic() - started
    if run.returncode == 0:
        return json.loads(run.stdout), None, seconds
    if run.returncode == 2:
        return None, run.stderr.strip(), seconds
    raise SystemExit(f"{' '.join(command)}: exit status {run.returncode}\n{run.stderr}")


def side_view(side):
    return (side["direction"], side["endpoint"], side["verdict"], sorted(side["l7_allowed"]))


def explain(row):
    parts = [f"{s['direction']} {s['endpoint']}: {s['verdict']}: {s['reason']}"
             + (f" [allows {', '.join(sorted(s['l7_allowed']))}]" if s["l7_allowed"] else "")
             for s in row["sides"]]
    return "; ".join(parts)


def differences(ours, theirs):
    found = []
    key = lambda row: (row["from"], row["to"], row["port"], row["protocol"])
    cilium_rows = {key(row): row for row in theirs}
    if len(cilium_rows) != len(ours):
        found.append(f"{len(ours)} pairs from calcmesh, {len(cilium_rows)} from Cilium")
    requests = 0
    for row in ours:
        pair = f"{row['from']} -> {row['to']} {row['port']}/{row['protocol']}"
        other = cilium_rows.get(key(row))
        if other is None:
            found.append(f"{pair}: Cilium has no such pair")
            continue
        if (row["verdict"] != other["verdict"]
                or list(map(side_view, row["sides"])) != list(map(side_view, other["sides"]))):
            found.append(f"{pair}: calcmesh {row['verdict']} ({explain(row)}), "
                         f"Cilium {other['verdict']} ({explain(other)})")
            continue
        cilium_requests = {r["request"]: r["verdict"] for r in other["requests"]}
        for request in row["requests"]:
            requests += 1
            verdict = cilium_requests.pop(request["request"], "not asked")
            if verdict != request["verdict"]:
                found.append(f"{pair} {request['request']}: calcmesh {request['verdict']}, "
                             f"Cilium {verdict} (rules: {explain(row)})")
        for request, verdict in cilium_requests.items():
            found.append(f"{pair} {request}: only Cilium decided it ({verdict})")
    return found, requests


def compare_case(args, name, manifests, policies, options, probe_list):
    ours, our_refusal, our_seconds = matrix(args, manifests, policies, options, probe_list,
                                            "calcmesh")
    theirs, their_refusal, their_seconds = matrix(args, manifests, policies, options, probe_list,
                                                  "cilium")
    timing = f"calcmesh {our_seconds:.2f} s, Cilium {their_seconds:.2f} s"
    if our_refusal or their_refusal:
        if our_refusal and their_refusal:
            print(f"{name}: both refuse the policies ({timing})\n"
                  f"  calcmesh: {our_refusal.splitlines()[0]}\n"
                  f"  Cilium:   {their_refusal.splitlines()[0]}")
            return 0
        print(f"differs: {name}: only {'calcmesh' if our_refusal else 'Cilium'} refuses the "
              f"policies: {our_refusal or their_refusal}")
        return 1
    found, requests = differences(ours, theirs)
    for difference in found:
        print(f"differs: {name}: {difference}")
    connect = sum(row["verdict"] in ("allowed", "restricted") for row in ours)
    print(f"{name}: {len(ours)} pairs ({connect} connect), {requests} requests on L7 pairs: "
          f"{len(found)} difference{'' if len(found) == 1 else 's'} ({timing})")
    return len(found)


def missing_engine(args, rendered):
    """Without the program, --engine cilium says so and how to build it."""
    run = subprocess.run(
        [args.calcmesh, "policy", "check", "--manifests", str(rendered / "default"),
         "--policies", str(rendered / "default" / "policies"), "--from", "world",
         "--to", "c1-client/job-submitter", "--port", "8080", "--engine", "cilium",
         "--cilium-engine", "/nonexistent/cilium-engine"],
        capture_output=True, text=True, timeout=60, check=False)
    if run.returncode == 2 and "is not built" in run.stderr and "--target cilium-engine" in run.stderr:
        return 0
    print(f"differs: a missing cilium-engine: exit status {run.returncode}, {run.stderr!r}")
    return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option in ("--calcmesh", "--cilium-engine", "--rendered", "--policies", "--broken"):
        parser.add_argument(option, required=True)
    parser.add_argument("--only", help="one variant or broken case")
    args = parser.parse_args()
    rendered, kit, broken = (pathlib.Path(args.rendered), pathlib.Path(args.policies),
                             pathlib.Path(args.broken))
    probe_list = probes(kit / "intended-matrix.yaml")
    kafka_l7 = [rendered / "default" / "policies", kit / "kafka-l7" / "c2-kafka.yaml"]
    cases = {
        "default": (rendered / "default", [rendered / "default" / "policies"], []),
        "failover": (rendered / "failover", [rendered / "failover" / "policies"], []),
        "kafka-l7": (rendered / "default", kafka_l7, []),
    }
    for case in sorted(p for p in broken.iterdir() if p.is_dir()):
        cases[f"broken/{case.name}"] = (rendered / "default",
                                        kafka_l7 + sorted(case.glob("*.yaml")), [])
    # As Cilium <= 1.18 read selectors (policyDefaultLocalCluster false): a cluster label left
    # out means every cluster.
    cases["broken/cluster-label-missing, every cluster"] = (
        rendered / "default", kafka_l7 + sorted((broken / "cluster-label-missing").glob("*.yaml")),
        ["--default-local-cluster", "false"])
    failed = missing_engine(args, rendered)
    for name, (manifests, policies, options) in cases.items():
        if args.only in (None, name):
            failed += compare_case(args, name, manifests, policies, options, probe_list)
    print(f"conformance: {len(cases)} policy sets, {len(probe_list)} probe requests: "
          f"{'FAILED' if failed else 'the engines agree'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
