package main

import "fmt"

// Question is what calcmesh asks: the endpoints, the policy files applied to each cluster, and
// the connections to decide.
type Question struct {
	Inventory           []Endpoint   `json:"inventory"`
	Policies            []PolicyFile `json:"policies"`
	DefaultLocalCluster bool         `json:"default_local_cluster"`
	Queries             []Query      `json:"queries"`
}

// Endpoint is a pod: its own labels, namespace and cluster make its identity.
type Endpoint struct {
	Name      string            `json:"name"`
	Cluster   string            `json:"cluster"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
	Ports     []Port            `json:"ports"`
}

type Port struct {
	Name     string `json:"name"`
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"`
}

// PolicyFile is applied to one cluster, in the order given (a later policy of the same kind,
// namespace and name replaces the earlier one, as kubectl apply does).
type PolicyFile struct {
	Path    string `json:"path"`
	File    string `json:"file"` // as calcmesh names it in messages
	Cluster string `json:"cluster"`
}

// Party is one side of a connection: an index into the inventory, or an entity.
type Party struct {
	Endpoint *int   `json:"endpoint,omitempty"`
	Entity   string `json:"entity,omitempty"`
}

type Request struct {
	Kind   string `json:"kind"` // "", "http" or "kafka"
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	APIKey string `json:"api_key,omitempty"`
	Topic  string `json:"topic,omitempty"`
}

type Query struct {
	From     Party   `json:"from"`
	To       Party   `json:"to"`
	Port     uint16  `json:"port"`
	Protocol string  `json:"protocol"`
	Request  Request `json:"request"`
}

// Answer holds one decision per query, in order, and the policies Cilium refused.
type Answer struct {
	Refused   []Refusal  `json:"refused"`
	Decisions []Decision `json:"decisions"`
}

type Refusal struct {
	File   string `json:"file"`
	Policy string `json:"policy"`
	Error  string `json:"error"`
}

// Decision has calcmesh's verdicts: allowed, restricted (L7 rules decide each request),
// rejected (the proxy refuses the request) or dropped.
type Decision struct {
	Verdict string `json:"verdict"`
	Sides   []Side `json:"sides"`
}

type Side struct {
	Direction string    `json:"direction"`
	Endpoint  int       `json:"endpoint"`
	Verdict   string    `json:"verdict"`
	Rules     []RuleRef `json:"rules"`
	L7Allowed []string  `json:"l7_allowed"`
	Reason    string    `json:"reason"`
}

type RuleRef struct {
	File   string `json:"file"`
	Policy string `json:"policy"`
	Field  string `json:"field"`
}

func (q *Question) validate() error {
	clusters := map[string]bool{}
	for i, e := range q.Inventory {
		if e.Cluster == "" || e.Namespace == "" || e.Name == "" {
			return fmt.Errorf("inventory[%d]: needs a name, a cluster and a namespace", i)
		}
		clusters[e.Cluster] = true
	}
	for i, p := range q.Policies {
		if !clusters[p.Cluster] {
			return fmt.Errorf("policies[%d].cluster: %q has no endpoint in the inventory", i, p.Cluster)
		}
	}
	party := func(field string, p Party) error {
		switch {
		case p.Endpoint != nil && (*p.Endpoint < 0 || *p.Endpoint >= len(q.Inventory)):
			return fmt.Errorf("%s.endpoint: %d is not an index into the inventory", field, *p.Endpoint)
		case p.Endpoint == nil:
			if _, ok := entityIdentities[p.Entity]; !ok {
				return fmt.Errorf("%s.entity: %q is not an entity (world, host, remote-node, ...)", field, p.Entity)
			}
		}
		return nil
	}
	for i, query := range q.Queries {
		field := fmt.Sprintf("queries[%d]", i)
		if err := party(field+".from", query.From); err != nil {
			return err
		}
		if err := party(field+".to", query.To); err != nil {
			return err
		}
		if query.From.Endpoint == nil && query.To.Endpoint == nil {
			return fmt.Errorf("%s: one side must be an endpoint", field)
		}
		if _, ok := protocols[query.Protocol]; !ok || query.Port == 0 {
			return fmt.Errorf("%s: port %d/%q: a port and TCP, UDP or SCTP", field, query.Port, query.Protocol)
		}
		switch query.Request.Kind {
		case "", "http":
		case "kafka":
			if _, ok := kafkaAPIKeys[query.Request.APIKey]; !ok {
				return fmt.Errorf("%s.request.api_key: %q is not a Kafka API key name", field, query.Request.APIKey)
			}
		default:
			return fmt.Errorf("%s.request.kind: %q: none, http or kafka", field, query.Request.Kind)
		}
	}
	return nil
}
