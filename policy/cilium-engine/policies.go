package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	ipcachetypes "github.com/cilium/cilium/pkg/ipcache/types"
	v2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	"github.com/cilium/cilium/pkg/policy/api"
	policytypes "github.com/cilium/cilium/pkg/policy/types"
	policyutils "github.com/cilium/cilium/pkg/policy/utils"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// parsedPolicy is one policy document as the agent imports it, or why Cilium refuses it.
type parsedPolicy struct {
	name     string // "CiliumNetworkPolicy calcmesh/worker"
	resource ipcachetypes.ResourceID
	entries  policytypes.PolicyEntries
	err      error
}

// readPolicies parses every document of a file with Cilium's CRD types (strictly, as the API
// server with kubectl's default field validation does) and its Parse, which sanitizes the rules
// and adds the namespace and, with policyDefaultLocalCluster, the cluster to the selectors.
func readPolicies(file PolicyFile, localCluster string, logger *slog.Logger) ([]parsedPolicy, error) {
	content, err := os.ReadFile(file.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file.File, err)
	}
	reader := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(content)))
	var policies []parsedPolicy
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file.File, err)
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, fmt.Errorf("%s: %w", file.File, err)
		}
		if head.Kind == "" && len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		policies = append(policies, parsePolicy(doc, head.Kind, head.Metadata.Namespace, head.Metadata.Name, localCluster, logger))
	}
	return policies, nil
}

func parsePolicy(doc []byte, kind, namespace, name, localCluster string, logger *slog.Logger) parsedPolicy {
	var rules api.Rules
	var err error
	var resourceKind ipcachetypes.ResourceKind
	switch kind {
	case "CiliumNetworkPolicy":
		if namespace == "" {
			namespace = "default" // where kubectl puts it
		}
		resourceKind = ipcachetypes.ResourceKindCNP
		var cnp v2.CiliumNetworkPolicy
		if err = yaml.UnmarshalStrict(doc, &cnp); err == nil {
			cnp.Namespace = namespace
			rules, err = cnp.Parse(logger, localCluster)
		}
	case "CiliumClusterwideNetworkPolicy":
		namespace = ""
		resourceKind = ipcachetypes.ResourceKindCCNP
		var ccnp v2.CiliumClusterwideNetworkPolicy
		if err = yaml.UnmarshalStrict(doc, &ccnp); err == nil {
			rules, err = ccnp.Parse(logger, localCluster)
		}
	default:
		err = fmt.Errorf("not a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy")
	}
	// The resource names the namespace: the repository looks up a namespace's rules by it.
	p := parsedPolicy{name: policyText(kind, namespace, name),
		resource: ipcachetypes.NewResourceID(resourceKind, namespace, name), err: err}
	if err == nil {
		p.entries = policyutils.RulesToPolicyEntries(rules)
	}
	return p
}
