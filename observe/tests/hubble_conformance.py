"""`calcmesh observe -o json` read by the real Hubble CLI (ctest observe.hubble-conformance).

A lab with the real services carries traffic of every kind: jobs by HTTP and Kafka, users from
the outside (the client pod is the world), the help page, UDP and ICMP, connections the shipped
policies drop, HTTP and Kafka requests their L7 rules refuse (AUDIT). Its flows, as `calcmesh observe -o json` prints
them, go to `hubble observe --input-file`, which must read every line without a warning, render
every flow in each output format, and select, for each filter, exactly the flows that
`calcmesh observe` selects with the same flags.

Needs root (exits 77, skipped, without); the lab is ct<pid>h and removed at the end, also when
a check fails.
"""

import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

SKIPPED = 77

# Filters given to both tools with the same flags. Pods are named with their namespace: without
# one, Hubble means the namespace "default", calcmesh any namespace.
FILTERS = [
    ["--from-pod", "calcmesh/job-submitter"],
    ["--to-pod", "calcmesh/addition-worker"],
    ["--from-pod", "calcmesh/addition", "--to-pod", "calcmesh/kafka"],
    ["--from-pod", "calcmesh/help-page", "--from-pod", "calcmesh/log-collector"],
    ["--from-cluster", "c3a-workers"],
    ["--to-cluster", "c2-kafka"],
    ["--from-cluster", "c1-client", "--to-cluster", "c3b-workers"],
    ["--verdict", "DROPPED"],
    ["--verdict", "AUDIT"],
    ["--verdict", "FORWARDED", "--verdict", "DROPPED"],
    ["--protocol", "tcp"],
    ["--protocol", "udp"],
    ["--protocol", "icmp"],
    ["--protocol", "udp", "--protocol", "icmp", "--verdict", "DROPPED"],
    ["--protocol", "http"],
    ["--protocol", "kafka"],
    ["--protocol", "http", "--protocol", "kafka"],
    ["--http-path", "^/compute"],
    ["--http-path", "/metrics$", "--http-path", "^/about"],
    ["--from-pod", "calcmesh/help-page", "--protocol", "http", "--verdict", "AUDIT"],
    ["--to-pod", "calcmesh/job-submitter", "--verdict", "DROPPED", "--protocol", "tcp"],
]
# Hubble's output formats, and how to count the flows each one shows.
FORMATS = {
    "compact": lambda lines: len(lines),
    "dict": lambda lines: sum(line.startswith("  TIMESTAMP: ") for line in lines),
    "json": lambda lines: len(lines),
    "jsonpb": lambda lines: len(lines),
    "table": lambda lines: len(lines) - 1,
}


class Failures:
    def __init__(self):
        self.count = 0

    def check(self, condition, message):
        if condition:
            return True
        self.count += 1
        print(f"FAIL {message}", flush=True)
        return False


def run(argv, timeout=120, check=True):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


class Lab:
    def __init__(self, calcmesh, name):
        self.calcmesh = calcmesh
        self.name = name

    def lab(self, command, *args, timeout=120, check=True):
        return run([self.calcmesh, "lab", command, "--name", self.name, *args], timeout, check)

    def exec(self, pod, *command, timeout=60, check=True):
        return self.lab("exec", pod, "--", *command, timeout=timeout, check=check)

    def observe(self, *args):
        return run([self.calcmesh, "observe", "--name", self.name, *args]).stdout

    def submit(self, operation, mechanism):
        body = json.dumps({"operation": operation, "a": 12, "b": 4, "mechanism": mechanism})
        answer = self.exec("client", "curl", "-s", "--max-time", "15", "-H",
                           "Content-Type: application/json", "-d", body,
                           "http://job-submitter:8080/submit").stdout
        if "result" not in json.loads(answer):
            raise RuntimeError(f"{operation} by {mechanism} failed: {answer}")

    def traffic(self, source_dir, rendered_dir):
        for operation in ["addition", "subtraction", "multiplication", "division"]:
            for mechanism in ["http", "kafka"]:
                self.submit(operation, mechanism)
        self.exec("client", "curl", "-s", "-o", "/dev/null", "--max-time", "10",
                  "http://help-page:8081/")
        self.udp_and_icmp()
        policies = sorted(glob.glob(os.path.join(rendered_dir, "policies", "*.yaml")))
        policies.append(os.path.join(source_dir, "deploy/kubernetes/policies/kafka-l7/c2-kafka.yaml"))
        run([self.calcmesh, "lab", "policy", "apply", "--name", self.name, *policies])
        # Refused by the workers' egress policy: dropped, curl times out.
        dropped = self.exec("addition-worker", "curl", "-s", "--max-time", "2",
                            "http://job-submitter:8080/", check=False)
        if dropped.returncode == 0:
            raise RuntimeError("the policies did not drop addition-worker -> job-submitter")
        # Refused by L7 rules, answered all the same: AUDIT.
        self.exec("help-page", "curl", "-s", "-o", "/dev/null", "--max-time", "3",
                  "http://addition-worker:8091/compute?a=1&b=2")
        self.exec("client", "curl", "-s", "-o", "/dev/null", "--max-time", "3",
                  "http://job-submitter:8080/metrics")
        self.exec("addition-worker", "bash", "-c",
                  "echo 1 | timeout 20 kcat -P -b kafka:9092 -t subtraction_requests")
        self.udp_and_icmp()
        for mechanism in ["http", "kafka"]:
            self.submit("multiplication", mechanism)
        time.sleep(1)

    def udp_and_icmp(self):
        """A datagram and a ping from the users to job-submitter: forwarded without policies,
        dropped with them (they allow neither)."""
        self.exec("client", "bash", "-c", "echo probe >/dev/udp/job-submitter/8080")
        self.exec("client", "ping", "-c", "1", "-W", "1", "job-submitter", check=False)


TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z")


def normalized(value):
    """The value with every timestamp's fraction without trailing zeros: proto3's JSON writes
    3, 6 or 9 digits, calcmesh always 9, for the same time."""
    if isinstance(value, dict):
        return {key: normalized(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalized(item) for item in value]
    if isinstance(value, str):
        match = TIMESTAMP.fullmatch(value)
        if match:
            fraction = (match.group(2) or "").rstrip("0")
            return match.group(1) + ("." + fraction if fraction else "") + "Z"
    return value


def canonical(line):
    return json.dumps(normalized(json.loads(line)), sort_keys=True)


def first_difference(ours, theirs, path=""):
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs)):
            if ours.get(key) != theirs.get(key):
                return first_difference(ours.get(key), theirs.get(key),
                                        f"{path}.{key}" if path else key)
    return f"{path}: calcmesh {json.dumps(ours)}, hubble {json.dumps(theirs)}"


def describe(line):
    flow = json.loads(line).get("flow", {})
    return (f"{flow.get('time')} {flow.get('node_name')} "
            f"{flow.get('source', {}).get('pod_name', 'world')} -> "
            f"{flow.get('destination', {}).get('pod_name', 'world')} {flow.get('Type')} "
            f"{flow.get('verdict')} ({flow.get('Summary')}): {line}")


def check_flows(lab, hubble, failures, workdir):
    recorded = lab.observe("-o", "json", "--last", "1000000").splitlines()
    path = os.path.join(workdir, "flows.json")
    with open(path, "w") as file:
        file.write("\n".join(recorded) + "\n")
    flows = [json.loads(line)["flow"] for line in recorded if "flow" in json.loads(line)]
    print(f"recorded {len(recorded)} lines, {len(flows)} flows", flush=True)
    present = collections.Counter()
    for flow in flows:
        present[flow["verdict"]] += 1
        for kind in ["http", "kafka"]:
            if kind in flow.get("l7", {}):
                present[f"{kind} {flow['verdict']}"] += 1
        present["world"] += "pod_name" not in flow.get("source", {})
        present["udp"] += "UDP" in flow.get("l4", {})
        present["icmp"] += "ICMPv4" in flow.get("l4", {})
    for kind in ["FORWARDED", "DROPPED", "AUDIT", "http FORWARDED", "http AUDIT",
                 "kafka FORWARDED", "kafka AUDIT", "world", "udp", "icmp"]:
        failures.check(present[kind] > 0, f"the recording has no flow of kind '{kind}'")

    def hubble_observe(*args):
        result = run([hubble, "observe", "--input-file", path, "--all", *args], check=False)
        failures.check(result.returncode == 0 and not result.stderr,
                       f"hubble observe {' '.join(args)}: exit {result.returncode}: "
                       f"{result.stderr.strip()}")
        return result.stdout.splitlines()

    # Read back unfiltered, hubble gives one line per line read, in order; that pairs hubble's
    # JSON of each flow with calcmesh's.
    read_back = hubble_observe("-o", "jsonpb")
    failures.check(len(read_back) == len(recorded),
                   f"hubble read {len(read_back)} of {len(recorded)} lines")
    # Hubble's JSON of a flow is calcmesh's when every field is one of Hubble's, with its type
    # and its value kept through the protobuf.
    for ours, theirs in zip(recorded, read_back):
        ours_json, theirs_json = normalized(json.loads(ours)), normalized(json.loads(theirs))
        failures.check(ours_json == theirs_json,
                       f"hubble reads a flow otherwise, "
                       f"{first_difference(ours_json, theirs_json)}: {describe(ours)}")
    recorded_of = dict(zip(map(canonical, read_back), recorded))
    for output, count in FORMATS.items():
        for extra in ([], ["--print-node-name"]):
            shown = count(hubble_observe("-o", output, *extra))
            failures.check(shown == len(recorded),
                           f"hubble -o {output} {' '.join(extra)} shows {shown} of "
                           f"{len(recorded)} flows")

    recorded_set = set(recorded)
    for flags in FILTERS:
        # calcmesh filters the collector's flows, which keep coming: those it printed that were
        # recorded are the ones it selects from the recording.
        ours = collections.Counter(line for line in
                                   lab.observe(*flags, "-o", "json", "--last", "1000000")
                                   .splitlines() if line in recorded_set)
        theirs = collections.Counter(recorded_of.get(canonical(line), "unpaired: " + line)
                                     for line in hubble_observe(*flags, "-o", "jsonpb"))
        name = " ".join(flags)
        failures.check(sum(ours.values()) > 0, f"{name}: calcmesh selects no flow")
        for line in (theirs - ours).elements():
            failures.check(False, f"{name}: only hubble selects {describe(line)}")
        for line in (ours - theirs).elements():
            failures.check(False, f"{name}: only calcmesh selects {describe(line)}")
        if ours == theirs:
            print(f"ok   {name}: the same {sum(ours.values())} flows", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calcmesh", required=True)
    parser.add_argument("--hubble", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--rendered-dir", required=True, help="deploy/render's default variant")
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        print("skipped: the lab needs root")
        return SKIPPED
    print(run([arguments.hubble, "version"]).stdout.strip(), flush=True)

    lab = Lab(arguments.calcmesh, f"ct{os.getpid()}h")
    failures = Failures()
    try:
        lab.lab("up", timeout=600)
        lab.traffic(arguments.source_dir, arguments.rendered_dir)
        with tempfile.TemporaryDirectory() as workdir:
            check_flows(lab, arguments.hubble, failures, workdir)
    finally:
        lab.lab("down", timeout=300, check=False)
    print(f"{failures.count} failures")
    return 1 if failures.count else 0


if __name__ == "__main__":
    sys.exit(main())
