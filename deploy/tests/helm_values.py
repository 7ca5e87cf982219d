"""The kit's Helm values against the Cilium chart (run by deploy/tests/helm-values).

Each values file and each merge must satisfy the chart's values.schema.json; every key path a
file sets must exist in the chart's values.yaml, since the schema accepts unknown keys in most
places and Helm ignores them silently; each merge must render with `helm template`, and the
rendered agent configuration must carry the merge's cluster, datapath and encryption.
"""

import argparse
import concurrent.futures
import copy
import difflib
import json
import os
import subprocess
import sys

import jsonschema
import yaml


def key_path(path):
    return ".".join(str(part) for part in path) or "(top level)"


def unknown_keys(values, chart, path=()):
    """The key paths of values that the chart's values.yaml does not have, each with the
    chart's keys at that level. A map that is empty or null in the chart is free-form (extra
    ConfigMap entries, annotations): anything below it is the user's."""
    for key, value in values.items():
        here = path + (key,)
        if key not in chart:
            yield here, sorted(chart)
            continue
        below = chart[key]
        if isinstance(value, dict) and isinstance(below, dict) and below:
            yield from unknown_keys(value, below, here)


def merged(documents):
    """The values as Helm coalesces files given in order: maps merge, anything else is replaced,
    null removes the key."""
    result = {}
    for document in documents:
        stack = [(result, document)]
        while stack:
            into, source = stack.pop()
            for key, value in source.items():
                if value is None:
                    into.pop(key, None)
                elif isinstance(value, dict) and isinstance(into.get(key), dict):
                    stack.append((into[key], value))
                else:
                    into[key] = copy.deepcopy(value)
    return result


class Checker:
    def __init__(self, chart, helm, deploy_dir):
        self.chart = chart
        self.helm = helm
        self.deploy_dir = deploy_dir
        with open(os.path.join(chart, "values.yaml")) as file:
            self.chart_values = yaml.safe_load(file)
        with open(os.path.join(chart, "values.schema.json")) as file:
            schema = json.load(file)
        self.validator = jsonschema.validators.validator_for(schema)(schema)
        self.failures = 0
        self.checks = 0
        # Names for files the test made, instead of their temporary paths.
        self.labels = {}

    def name(self, path):
        if path in self.labels:
            return self.labels[path]
        if path.startswith(self.deploy_dir + os.sep):
            return "deploy/" + os.path.relpath(path, self.deploy_dir)
        return path

    def report(self, subject, problems, detail=""):
        self.checks += 1
        for problem in problems:
            print(f"FAIL {subject}: {problem}")
        if problems:
            self.failures += 1
        else:
            print(f"ok   {subject}{detail}")

    def schema_problems(self, values):
        return [
            f"{key_path(error.absolute_path)}: {error.message} (values.schema.json)"
            for error in self.validator.iter_errors(values)
        ]

    def check_file(self, path):
        with open(path) as file:
            values = yaml.safe_load(file) or {}
        problems = self.schema_problems(values)
        for unknown, siblings in unknown_keys(values, self.chart_values):
            close = difflib.get_close_matches(unknown[-1], siblings, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{key_path(unknown)}: not a value of the chart{hint}")
        self.report(self.name(path), problems)
        return values

    def check_merge(self, name, files, documents):
        values = merged(documents)
        problems = self.schema_problems(values)
        arguments = [self.helm, "template", "cilium", self.chart, "--namespace", "kube-system"]
        for path in files:
            arguments += ["--values", path]
        result = subprocess.run(arguments, capture_output=True, text=True, timeout=300)
        if result.returncode != 0 or result.stderr:
            problems.append(f"helm template failed ({result.returncode}): {result.stderr.strip()}")
        else:
            problems += self.rendered_problems(name, result.stdout)
        return name, files, problems

    @staticmethod
    def rendered_problems(name, rendered):
        provider, datapath, encryption, cluster = name.split("/")
        objects = {
            (document["kind"], document["metadata"]["name"]): document
            for document in yaml.safe_load_all(rendered)
            if document
        }
        config = objects.get(("ConfigMap", "cilium-config"), {}).get("data", {})
        expected = {"cluster-name": cluster, "routing-mode": datapath}
        if encryption != "off":
            expected[f"enable-{encryption}"] = "true"
        problems = [
            f"rendered cilium-config has {key}={config.get(key)!r}, expected {value!r}"
            for key, value in expected.items()
            if config.get(key) != value
        ]
        agent = objects.get(("DaemonSet", "cilium"))
        if agent is None:
            return problems + ["rendered no DaemonSet cilium"]
        image = agent["spec"]["template"]["spec"]["containers"][0]["image"]
        if provider == "kind" and not image.startswith("localhost/cilium/cilium:v"):
            problems.append(f"the agent's image is {image}, not the one deploy/images builds")
        return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--helm", required=True)
    parser.add_argument("--chart", required=True)
    parser.add_argument("--merges", required=True, help="lines: name<TAB>file<TAB>file...")
    parser.add_argument("files", nargs="+", help="the kit's values files")
    arguments = parser.parse_args()
    deploy_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    checker = Checker(arguments.chart, arguments.helm, deploy_dir)

    documents = {}
    for path in arguments.files:
        documents[path] = checker.check_file(path)
    merges = []
    with open(arguments.merges) as file:
        for line in file:
            name, *files = line.rstrip("\n").split("\t")
            for path in files:
                if path not in documents:
                    # The mesh values that kind_mesh_values made for this merge's cluster.
                    checker.labels[path] = f"(kind_mesh_values {name.split('/')[-1]})"
                    documents[path] = checker.check_file(path)
            merges.append((name, files))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(
            lambda merge: checker.check_merge(*merge, [documents[path] for path in merge[1]]),
            merges,
        )
        for name, files, problems in results:
            checker.report(name, problems, ": " + " ".join(checker.name(path) for path in files))

    chart = yaml.safe_load(open(os.path.join(arguments.chart, "Chart.yaml")))
    print(
        f"{checker.checks - checker.failures}/{checker.checks} checks passed against the "
        f"{chart['name']} chart {chart['version']} ({arguments.chart}): "
        f"{len(arguments.files)} files, {len(merges)} merges"
    )
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main())
