// cilium-engine answers policy questions with Cilium's own policy engine: the policy files are
// parsed by Cilium's CRD types, imported into one pkg/policy Repository per cluster (as each
// cluster's agent would), and every endpoint gets an identity from its labels. The L4 verdict is
// the lookup in the endpoint's distilled policy map; the L7 verdict is the proxy's: HTTP rules as
// Cilium translates them for Envoy, Kafka rules through cilium/proxy's kafkalib matcher.
//
// It reads one JSON document (the inventory, the policy files, the questions) and writes the
// decisions as JSON to another file; calcmesh (`calcmesh policy ... --engine cilium`) writes the
// question and renders the answer. docs/policy.md describes both.
package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: cilium-engine QUESTION.json ANSWER.json (calcmesh policy check|matrix --engine cilium writes the question)")
		os.Exit(2)
	}
	// Cilium's packages log through slog and logrus; only their errors matter here.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	text, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	var q Question
	if err := json.Unmarshal(text, &q); err != nil {
		fail("the question is not valid JSON: %v", err)
	}
	if err := q.validate(); err != nil {
		fail("%v", err)
	}
	answer, err := answer(&q)
	if err != nil {
		fail("%v", err)
	}
	encoded, err := json.Marshal(answer)
	if err == nil {
		err = os.WriteFile(os.Args[2], encoded, 0o644)
	}
	if err != nil {
		fail("writing the answer: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cilium-engine: "+format+"\n", args...)
	os.Exit(2)
}
