package main

import (
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/cilium/pkg/crypto/certificatemanager"
	"github.com/cilium/cilium/pkg/endpoint/regeneration"
	envoypolicy "github.com/cilium/cilium/pkg/envoy/policy"
	"github.com/cilium/cilium/pkg/identity"
	"github.com/cilium/cilium/pkg/identity/identitymanager"
	k8sconst "github.com/cilium/cilium/pkg/k8s/apis/cilium.io"
	"github.com/cilium/cilium/pkg/labels"
	"github.com/cilium/cilium/pkg/option"
	"github.com/cilium/cilium/pkg/policy"
	"github.com/cilium/cilium/pkg/policy/api"
	"github.com/cilium/cilium/pkg/spanstat"
	testpolicy "github.com/cilium/cilium/pkg/testutils/policy"
	"github.com/cilium/cilium/pkg/u8proto"
)

var entityIdentities = map[string]identity.NumericIdentity{
	"host":           identity.ReservedIdentityHost,
	"world":          identity.ReservedIdentityWorld,
	"remote-node":    identity.ReservedIdentityRemoteNode,
	"kube-apiserver": identity.ReservedIdentityKubeAPIServer,
	"health":         identity.ReservedIdentityHealth,
	"init":           identity.ReservedIdentityInit,
	"unmanaged":      identity.ReservedIdentityUnmanaged,
	"ingress":        identity.ReservedIdentityIngress,
}

var protocols = map[string]u8proto.U8proto{"TCP": u8proto.TCP, "UDP": u8proto.UDP, "SCTP": u8proto.SCTP}

// firstEndpointIdentity leaves room below for the reserved identities.
const firstEndpointIdentity = 1000

// engine holds the identities of every endpoint and entity, known to every cluster's agent
// through ClusterMesh.
type engine struct {
	question   *Question
	logger     *slog.Logger
	identities []*identity.Identity // per inventory endpoint
	all        identity.IdentityMap
}

// cluster is one cluster's agent: its policy repository and which file each policy came from.
type cluster struct {
	*engine
	name  string
	repo  *policy.Repository
	files map[string]string // "Kind namespace/name" -> file
}

func answer(q *Question) (*Answer, error) {
	// The kit's agents run with allow-localhost: policy (deploy/cilium/common.yaml).
	option.Config.AllowLocalhost = option.AllowLocalhostPolicy
	e := &engine{
		question: q,
		logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		all:      identity.IdentityMap{},
	}
	for _, id := range entityIdentities {
		reserved := identity.LookupReservedIdentity(id)
		e.all[id] = reserved.LabelArray
	}
	for i, endpoint := range q.Inventory {
		lbls := labels.Map2Labels(endpoint.Labels, labels.LabelSourceK8s)
		lbls.MergeLabels(labels.Map2Labels(map[string]string{
			k8sconst.PodNamespaceLabel:  endpoint.Namespace,
			k8sconst.PolicyLabelCluster: endpoint.Cluster,
		}, labels.LabelSourceK8s))
		id := identity.NewIdentity(identity.NumericIdentity(firstEndpointIdentity+i), lbls)
		e.identities = append(e.identities, id)
		e.all[id.ID] = id.LabelArray
	}

	answer := &Answer{Refused: []Refusal{}, Decisions: make([]Decision, len(q.Queries))}
	sides := make([][]Side, len(q.Queries))
	clusters := []string{}
	for _, endpoint := range q.Inventory {
		if !slices.Contains(clusters, endpoint.Cluster) {
			clusters = append(clusters, endpoint.Cluster)
		}
	}
	// One agent at a time: the entity `cluster` is a process-wide setting of Cilium's.
	for _, name := range clusters {
		c, refused, err := e.newCluster(name)
		if err != nil {
			return nil, err
		}
		answer.Refused = append(answer.Refused, refused...)
		for i, query := range q.Queries {
			egress, ingress := c.decideInCluster(query)
			if egress != nil {
				sides[i] = append([]Side{*egress}, sides[i]...)
			}
			if ingress != nil {
				sides[i] = append(sides[i], *ingress)
			}
		}
	}
	for i := range q.Queries {
		answer.Decisions[i] = Decision{Verdict: worst(sides[i]), Sides: sides[i]}
	}
	return answer, nil
}

// worst is calcmesh's combination of the two sides.
func worst(sides []Side) string {
	for _, verdict := range []string{"dropped", "rejected", "restricted"} {
		for _, side := range sides {
			if side.Verdict == verdict {
				return verdict
			}
		}
	}
	return "allowed"
}

func (e *engine) newCluster(name string) (*cluster, []Refusal, error) {
	api.InitEntities(name)
	idMgr := identitymanager.NewIDManager(e.logger)
	repo := policy.NewPolicyRepository(e.logger, e.all, nil,
		envoypolicy.NewEnvoyL7RulesTranslator(e.logger, certificatemanager.NewMockSecretManagerInline()),
		idMgr, testpolicy.NewPolicyMetricsNoop())
	c := &cluster{engine: e, name: name, repo: repo, files: map[string]string{}}
	localCluster := ""
	if e.question.DefaultLocalCluster {
		localCluster = name
	}
	var refused []Refusal
	for _, file := range e.question.Policies {
		if file.Cluster != name {
			continue
		}
		policies, err := readPolicies(file, localCluster, e.logger)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range policies {
			if p.err != nil {
				refused = append(refused, Refusal{File: file.File, Policy: p.name, Error: p.err.Error()})
				continue
			}
			repo.ReplaceByResource(p.entries, p.resource)
			c.files[p.name] = file.File
		}
	}
	for i, endpoint := range e.question.Inventory {
		if endpoint.Cluster == name {
			idMgr.Add(e.identities[i])
		}
	}
	return c, refused, nil
}

// decideInCluster gives the sides of a query that this cluster's agent enforces: egress at a
// source of this cluster, ingress at a destination of this cluster.
func (c *cluster) decideInCluster(q Query) (egress, ingress *Side) {
	inventory := c.question.Inventory
	if q.From.Endpoint != nil && inventory[*q.From.Endpoint].Cluster == c.name {
		side := c.decideSide(*q.From.Endpoint, false, q.To, q)
		egress = &side
	}
	if q.To.Endpoint != nil && inventory[*q.To.Endpoint].Cluster == c.name {
		side := c.decideSide(*q.To.Endpoint, true, q.From, q)
		ingress = &side
	}
	return egress, ingress
}

func (c *cluster) peerIdentity(p Party) identity.NumericIdentity {
	if p.Endpoint != nil {
		return c.identities[*p.Endpoint].ID
	}
	return entityIdentities[p.Entity]
}

// owner is the endpoint a policy is distilled for. Named ports are the destination's: the
// subject's own for ingress, the peer's for egress.
type owner struct {
	id        uint64
	ports     []Port
	peerPorts []Port
}

func (o *owner) GetID() uint64 { return o.id }
func (o *owner) GetNamedPort(ingress bool, name string, proto u8proto.U8proto) uint16 {
	ports := o.ports
	if !ingress {
		ports = o.peerPorts
	}
	for _, p := range ports {
		if p.Name == name && protocols[p.Protocol] == proto {
			return p.Port
		}
	}
	return 0
}
func (o *owner) PolicyDebug(string, ...any)         { /* not traced */ }
func (o *owner) IsHost() bool                       { return false }
func (o *owner) PreviousMapState() *policy.MapState { return nil }
func (o *owner) RegenerateIfAlive(_ *regeneration.ExternalRegenerationMetadata) <-chan bool {
	done := make(chan bool)
	close(done)
	return done
}

type noStatistics struct{ waiting, calculation spanstat.SpanStat }

func (s *noStatistics) WaitingForPolicyRepository() *spanstat.SpanStat { return &s.waiting }
func (s *noStatistics) SelectorPolicyCalculation() *spanstat.SpanStat  { return &s.calculation }

func (c *cluster) decideSide(subject int, ingress bool, peer Party, q Query) Side {
	direction := "egress"
	if ingress {
		direction = "ingress"
	}
	side := Side{Direction: direction, Endpoint: subject, Rules: []RuleRef{}, L7Allowed: []string{}}
	subjectID := c.identities[subject]
	sp, _, err := c.repo.GetSelectorPolicy(subjectID, 0, &noStatistics{}, uint64(subjectID.ID))
	if err != nil {
		// Cilium cannot compute a policy for the endpoint (conflicting L7 rules): its traffic
		// is dropped until the policy is fixed.
		side.Verdict = "dropped"
		side.Reason = "Cilium cannot compute the endpoint's policy: " + err.Error()
		return side
	}
	o := &owner{id: uint64(subjectID.ID), ports: c.question.Inventory[subject].Ports}
	if peer.Endpoint != nil {
		o.peerPorts = c.question.Inventory[*peer.Endpoint].Ports
	}
	// Every redirect gets a proxy port, so that the map state marks L7 traffic.
	redirects := map[string]uint16{}
	for l4, tuple := range sp.RedirectFilters() {
		port := l4.Port
		if port == 0 && l4.PortName != "" {
			port = o.GetNamedPort(l4.Ingress, l4.PortName, l4.U8Proto)
		}
		id := policy.ProxyID(uint16(o.id), l4.Ingress, string(l4.Protocol), port, tuple.Policy.GetListener())
		if _, ok := redirects[id]; !ok {
			redirects[id] = uint16(10000 + len(redirects))
		}
	}
	epp := sp.DistillPolicy(c.logger, o, redirects)
	epp.Ready()
	defer epp.Detach(c.logger)

	peerID := c.peerIdentity(peer)
	proto := protocols[q.Protocol]
	key := policy.EgressKey()
	enabled := epp.SelectorPolicy.EgressPolicyEnabled
	if ingress {
		key = policy.IngressKey()
		enabled = epp.SelectorPolicy.IngressPolicyEnabled
	}
	entry, meta, found := epp.Lookup(key.WithIdentity(peerID).WithPortProto(proto, q.Port))
	side.Rules = c.ruleRefs(meta)
	switch {
	case !enabled:
		side.Verdict = "allowed"
		side.Reason = "no policy selects it for " + direction
	case entry.IsDeny() && found:
		side.Verdict = "dropped"
		side.Reason = "deny rule " + refsText(side.Rules)
	case entry.IsDeny():
		side.Verdict = "dropped"
		side.Reason = "no rule allows it; default deny"
	case !entry.IsRedirectEntry():
		side.Verdict = "allowed"
		side.Reason = "rule " + refsText(side.Rules)
	default:
		c.decideL7(&side, sp, ingress, peerID, q)
	}
	return side
}

// decideL7 is the proxy's part: the L7 rules of every selector of this port that selects the
// peer. A selector without L7 rules (an L4 allow of the same peer and port) makes the proxy pass
// every request of that peer.
func (c *cluster) decideL7(side *Side, sp policy.SelectorPolicy, ingress bool, peerID identity.NumericIdentity, q Query) {
	var perSelector []*policy.PerSelectorPolicy
	l4Only := false
	seen := map[*policy.L4Filter]bool{}
	for l4 := range sp.RedirectFilters() {
		if seen[l4] || l4.Ingress != ingress || !filterCovers(l4, q) {
			continue
		}
		seen[l4] = true
		for cs, ps := range l4.PerSelectorPolicies {
			if !cs.Selects(peerID) {
				continue
			}
			if ps == nil || (!ps.IsRedirect() && !ps.IsDeny()) || passesEverything(&ps.L7Rules) {
				l4Only = true
				continue
			}
			perSelector = append(perSelector, ps)
		}
	}
	if l4Only {
		side.Verdict = "allowed"
		side.Reason = "rule " + refsText(side.Rules) + " (an L4 allow of this peer and port: the proxy passes every request)"
		return
	}
	for _, ps := range perSelector {
		side.L7Allowed = append(side.L7Allowed, describeL7(&ps.L7Rules)...)
	}
	sort.Strings(side.L7Allowed)
	side.L7Allowed = slices.Compact(side.L7Allowed)
	if q.Request.Kind == "" {
		side.Verdict = "restricted"
		side.Reason = "L7 rules of " + refsText(side.Rules) + " decide each request"
		return
	}
	allowed, err := c.proxyAllows(perSelector, q.Request)
	if err != nil {
		side.Verdict = "rejected"
		side.Reason = err.Error()
		return
	}
	if allowed {
		side.Verdict = "allowed"
		side.Reason = "an L7 rule of " + refsText(side.Rules) + " allows " + requestText(q.Request)
		return
	}
	side.Verdict = "rejected"
	side.Reason = "no L7 rule of " + refsText(side.Rules) + " allows " + requestText(q.Request)
}

// passesEverything: no L7 rules, or a rule that matches every request (Cilium adds one when it
// merges an L4 allow into the L7 rules of the same selector).
func passesEverything(rules *api.L7Rules) bool {
	if rules.IsEmpty() {
		return true
	}
	for _, h := range rules.HTTP {
		if h.Method == "" && h.Path == "" && h.Host == "" && len(h.Headers) == 0 && len(h.HeaderMatches) == 0 {
			return true
		}
	}
	for _, k := range rules.Kafka {
		if k.Role == "" && k.APIKey == "" && k.APIVersion == "" && k.ClientID == "" && k.Topic == "" {
			return true
		}
	}
	return false
}

func filterCovers(l4 *policy.L4Filter, q Query) bool {
	if l4.U8Proto != 0 && l4.U8Proto != protocols[q.Protocol] {
		return false
	}
	if l4.Port == 0 && l4.PortName == "" {
		return true
	}
	if l4.PortName != "" {
		return true // resolved by the map state lookup, which already chose a redirect
	}
	if l4.EndPort != 0 {
		return q.Port >= l4.Port && q.Port <= l4.EndPort
	}
	return q.Port == l4.Port
}

// ruleRefs names the policies a map state entry derives from, by their labels.
func (c *cluster) ruleRefs(meta policy.RuleMeta) []RuleRef {
	refs := []RuleRef{}
	for _, lbls := range meta.LabelArray() {
		kind := lbls.Get(labels.LabelSourceK8sKeyPrefix + k8sconst.PolicyLabelDerivedFrom)
		name := lbls.Get(labels.LabelSourceK8sKeyPrefix + k8sconst.PolicyLabelName)
		if kind == "" || name == "" {
			continue
		}
		policyName := policyText(kind, lbls.Get(labels.LabelSourceK8sKeyPrefix+k8sconst.PolicyLabelNamespace), name)
		refs = append(refs, RuleRef{File: c.files[policyName], Policy: policyName})
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Policy < refs[j].Policy })
	return slices.Compact(refs)
}

func policyText(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

func refsText(refs []RuleRef) string {
	parts := []string{}
	for _, ref := range refs {
		parts = append(parts, ref.File+": "+ref.Policy)
	}
	if len(parts) == 0 {
		return "(no policy labels)"
	}
	return strings.Join(parts, "; ")
}

func requestText(r Request) string {
	if r.Kind == "http" {
		return r.Method + " " + r.Path
	}
	return strings.TrimSpace("kafka " + r.APIKey + " " + r.Topic)
}

// describeL7 renders rules as calcmesh does ("http GET /about", "kafka produce results").
func describeL7(rules *api.L7Rules) []string {
	var out []string
	orAny := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	for _, h := range rules.HTTP {
		text := "http " + orAny(h.Method) + " " + orAny(h.Path)
		if h.Host != "" {
			text += " host " + h.Host
		}
		for _, header := range h.Headers {
			text += " [" + header + "]"
		}
		out = append(out, text)
	}
	for _, k := range rules.Kafka {
		what := k.Role
		if what == "" {
			what = k.APIKey
		}
		text := "kafka " + orAny(what) + " " + orAny(k.Topic)
		if k.APIVersion != "" {
			text += " v" + k.APIVersion
		}
		if k.ClientID != "" {
			text += " client " + k.ClientID
		}
		out = append(out, text)
	}
	for _, d := range rules.DNS {
		if d.MatchName != "" {
			out = append(out, "dns name "+d.MatchName)
		} else {
			out = append(out, "dns pattern "+d.MatchPattern)
		}
	}
	return out
}
