#pragma once

// Kafka's API keys as Cilium's policies and proxy know them (Cilium 1.19): the names a rule may
// use, what a role expands to, and which requests' topics the proxy reads.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace calcmesh::policy {

/// The Kafka API key names Cilium accepts in apiKey, with their numbers.
const std::vector<std::pair<std::string, int>>& kafka_api_keys();
/// The API keys a Kafka role expands to (Cilium's produce and consume roles).
const std::vector<std::string>& kafka_role_keys(std::string_view role);
/// Whether requests of this API key name topics (the rule's topic constrains only those).
bool kafka_key_has_topics(std::string_view api_key);
/// Whether Cilium's proxy reads the topics of this API key's requests. A rule with a topic
/// matches a request of a key that names topics only among the topics read, so it never
/// matches one whose topics are not read (offsetforleaderepoch, createtopics, ...).
bool kafka_key_topics_read(std::string_view api_key);
/// Whether Cilium's proxy answers a refused request of this API key (TOPIC_AUTHORIZATION_FAILED).
/// It cannot build an answer to a request it does not decode, and drops it without one.
bool kafka_refusal_answered(std::string_view api_key);

}  // namespace calcmesh::policy
