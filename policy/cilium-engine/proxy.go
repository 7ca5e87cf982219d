package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cilium/cilium/pkg/policy"
	"github.com/cilium/kafka/proto"
	kafkaapi "github.com/cilium/proxy/pkg/policy/api/kafka"
	"github.com/cilium/proxy/proxylib/kafka/kafkalib"
	envoyroute "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	envoymatcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

var kafkaAPIKeys = kafkaapi.APIKeyMap

// proxyAllows is the proxy's verdict on a request: allowed if an L7 rule of any selector that
// selects the peer matches it.
func (c *cluster) proxyAllows(perSelector []*policy.PerSelectorPolicy, r Request) (bool, error) {
	switch r.Kind {
	case "http":
		headers := map[string]string{":method": r.Method, ":path": r.Path}
		for _, ps := range perSelector {
			rules := ps.EnvoyHTTPRules()
			if rules == nil {
				rules, _ = c.repo.GetEnvoyHTTPRules(&ps.L7Rules, "")
			}
			for _, rule := range rules.GetHttpRules() {
				matched, err := headersMatch(rule.GetHeaders(), headers)
				if err != nil {
					return false, err
				}
				if matched && len(rule.GetHeaderMatches()) == 0 {
					return true, nil
				}
			}
		}
		return false, nil
	case "kafka":
		// The same request goes through every rule, as in the proxy: a rule that finds one of
		// several topics removes it from those still to be allowed.
		request, err := kafkalib.ReadRequest(bytes.NewReader(kafkaRequest(r.APIKey, r.Topic)))
		if err != nil {
			return false, fmt.Errorf("the proxy cannot parse the Kafka request and closes the connection: %v", err)
		}
		for _, ps := range perSelector {
			for _, kr := range ps.Kafka {
				rule := kafkalib.NewRule(kr.GetAPIVersion(), kr.GetAPIKeys(), kr.ClientID, kr.Topic)
				if rule.Matches(request) {
					return true, nil
				}
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("no request to check")
}

// headersMatch evaluates Envoy header matchers as Envoy does: every matcher must match; a
// regular expression (RE2) must match the whole value.
func headersMatch(matchers []*envoyroute.HeaderMatcher, headers map[string]string) (bool, error) {
	for _, m := range matchers {
		value, present := headers[m.GetName()]
		matched := false
		switch spec := m.GetHeaderMatchSpecifier().(type) {
		case *envoyroute.HeaderMatcher_PresentMatch:
			matched = present == spec.PresentMatch
		case *envoyroute.HeaderMatcher_StringMatch:
			if present {
				var err error
				matched, err = stringMatches(spec.StringMatch, value)
				if err != nil {
					return false, err
				}
			}
		default:
			return false, fmt.Errorf("header matcher %T is not evaluated here", spec)
		}
		if matched == m.GetInvertMatch() {
			return false, nil
		}
	}
	return true, nil
}

func stringMatches(m *envoymatcher.StringMatcher, value string) (bool, error) {
	switch pattern := m.GetMatchPattern().(type) {
	case *envoymatcher.StringMatcher_Exact:
		return value == pattern.Exact, nil
	case *envoymatcher.StringMatcher_Prefix:
		return strings.HasPrefix(value, pattern.Prefix), nil
	case *envoymatcher.StringMatcher_Suffix:
		return strings.HasSuffix(value, pattern.Suffix), nil
	case *envoymatcher.StringMatcher_Contains:
		return strings.Contains(value, pattern.Contains), nil
	case *envoymatcher.StringMatcher_SafeRegex:
		re, err := regexp.Compile(`^(?:` + pattern.SafeRegex.GetRegex() + `)$`)
		if err != nil {
			return false, fmt.Errorf("Envoy refuses the regular expression %q: %v", pattern.SafeRegex.GetRegex(), err)
		}
		return re.MatchString(value), nil
	}
	return false, fmt.Errorf("string matcher %T is not evaluated here", m.GetMatchPattern())
}

// kafkaRequest encodes a version 0 request of the API key naming the topic, as a client sends
// it; the proxy's parser reads it back. Keys the parser does not decode get a header alone.
func kafkaRequest(apiKey, topic string) []byte {
	var topics []string
	if topic != "" {
		topics = []string{topic}
	}
	var encoded []byte
	var err error
	switch kafkaAPIKeys[apiKey] {
	case proto.ProduceReqKind:
		req := proto.ProduceReq{RequiredAcks: 1, Timeout: time.Second}
		for _, t := range topics {
			req.Topics = append(req.Topics, proto.ProduceReqTopic{Name: t, Partitions: []proto.ProduceReqPartition{
				{ID: 0, Messages: []*proto.Message{{Value: []byte("7")}}}}})
		}
		encoded, err = req.Bytes(0)
	case proto.FetchReqKind:
		req := proto.FetchReq{ReplicaID: -1, MaxWaitTime: time.Second, MinBytes: 1}
		for _, t := range topics {
			req.Topics = append(req.Topics, proto.FetchReqTopic{Name: t, Partitions: []proto.FetchReqPartition{{ID: 0, MaxBytes: 1024}}})
		}
		encoded, err = req.Bytes(0)
	case proto.OffsetReqKind:
		req := proto.OffsetReq{ReplicaID: -1}
		for _, t := range topics {
			req.Topics = append(req.Topics, proto.OffsetReqTopic{Name: t, Partitions: []proto.OffsetReqPartition{{ID: 0, TimeMs: -1, MaxOffsets: 1}}})
		}
		encoded, err = req.Bytes(0)
	case proto.MetadataReqKind:
		encoded, err = (&proto.MetadataReq{Topics: topics}).Bytes(0)
	case proto.OffsetCommitReqKind:
		req := proto.OffsetCommitReq{ConsumerGroup: "calcmesh"}
		for _, t := range topics {
			req.Topics = append(req.Topics, proto.OffsetCommitReqTopic{Name: t, Partitions: []proto.OffsetCommitReqPartition{{ID: 0, Offset: 1}}})
		}
		encoded, err = req.Bytes(0)
	case proto.OffsetFetchReqKind:
		req := proto.OffsetFetchReq{ConsumerGroup: "calcmesh"}
		for _, t := range topics {
			req.Topics = append(req.Topics, proto.OffsetFetchReqTopic{Name: t, Partitions: []int32{0}})
		}
		encoded, err = req.Bytes(0)
	case proto.ConsumerMetadataReqKind:
		encoded, err = (&proto.ConsumerMetadataReq{ConsumerGroup: "calcmesh"}).Bytes(0)
	default:
		// size, API key, version 0, correlation id; the body is not read.
		encoded = binary.BigEndian.AppendUint32(nil, 8)
		encoded = binary.BigEndian.AppendUint16(encoded, uint16(kafkaAPIKeys[apiKey]))
		encoded = binary.BigEndian.AppendUint16(encoded, 0)
		encoded = binary.BigEndian.AppendUint32(encoded, 1)
	}
	if err != nil {
		panic(fmt.Sprintf("encoding a Kafka %s request: %v", apiKey, err))
	}
	return encoded
}
