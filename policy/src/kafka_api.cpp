#include "calcmesh/policy/kafka_api.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace calcmesh::policy {

namespace {

// Cilium compares API key and role names without regard to case.
std::string lower(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return result;
}

}  // namespace

// Cilium's list (cilium/proxy pkg/policy/api/kafka APIKeyMap, which PortRule.Sanitize checks):
// it stops at alterconfigs (33), so Cilium 1.19 refuses a policy naming a later key such as
// createpartitions, whatever Kafka itself has.
const std::vector<std::pair<std::string, int>>& kafka_api_keys() {
    static const std::vector<std::pair<std::string, int>> kKeys = {
        {"produce", 0},
        {"fetch", 1},
        {"offsets", 2},
        {"metadata", 3},
        {"leaderandisr", 4},
        {"stopreplica", 5},
        {"updatemetadata", 6},
        {"controlledshutdown", 7},
        {"offsetcommit", 8},
        {"offsetfetch", 9},
        {"findcoordinator", 10},
        {"joingroup", 11},
        {"heartbeat", 12},
        {"leavegroup", 13},
        {"syncgroup", 14},
        {"describegroups", 15},
        {"listgroups", 16},
        {"saslhandshake", 17},
        {"apiversions", 18},
        {"createtopics", 19},
        {"deletetopics", 20},
        {"deleterecords", 21},
        {"initproducerid", 22},
        {"offsetforleaderepoch", 23},
        {"addpartitionstotxn", 24},
        {"addoffsetstotxn", 25},
        {"endtxn", 26},
        {"writetxnmarkers", 27},
        {"txnoffsetcommit", 28},
        {"describeacls", 29},
        {"createacls", 30},
        {"deleteacls", 31},
        {"describeconfigs", 32},
        {"alterconfigs", 33},
    };
    return kKeys;
}

const std::vector<std::string>& kafka_role_keys(std::string_view role) {
    static const std::vector<std::string> kProduce = {"produce", "metadata", "apiversions"};
    static const std::vector<std::string> kConsume = {
        "fetch",     "offsets",   "metadata",   "offsetcommit", "offsetfetch", "findcoordinator",
        "joingroup", "heartbeat", "leavegroup", "syncgroup",    "apiversions"};
    static const std::vector<std::string> kNone;
    const std::string name = lower(role);
    return name == "produce" ? kProduce : name == "consume" ? kConsume : kNone;
}

bool kafka_key_has_topics(std::string_view api_key) {
    // As Cilium's proxy counts them (cilium/proxy proxylib/kafka/kafkalib: isTopicAPIKey in
    // policy.go). It reads the topics of only some of them: kafka_key_topics_read.
    static const std::set<std::string, std::less<>> kTopicKeys = {"produce",
                                                                  "fetch",
                                                                  "offsets",
                                                                  "metadata",
                                                                  "leaderandisr",
                                                                  "stopreplica",
                                                                  "updatemetadata",
                                                                  "offsetcommit",
                                                                  "offsetfetch",
                                                                  "createtopics",
                                                                  "deletetopics",
                                                                  "deleterecords",
                                                                  "offsetforleaderepoch",
                                                                  "addpartitionstotxn",
                                                                  "writetxnmarkers",
                                                                  "txnoffsetcommit"};
    return kTopicKeys.contains(lower(api_key));
}

namespace {

/// The API keys whose requests Cilium's proxy decodes, each with whether it reads their topics.
const std::map<std::string, bool, std::less<>>& kafka_parsed_keys() {
    // Source of truth: cilium/proxy proxylib/kafka/kafkalib, ReadRequest and setTopics in
    // request.go, as in the cilium-envoy that Cilium 1.19.5 runs (built from cilium/proxy's
    // branch v1.35).
    // ReadRequest decodes only these requests, and setTopics reads the topics of all but
    // findcoordinator (its ConsumerMetadataReq names a group). The proxy keeps no other topics.
    static const std::map<std::string, bool, std::less<>> kParsed = {
        {"produce", true},          {"fetch", true},        {"offsets", true},
        {"metadata", true},         {"offsetcommit", true}, {"offsetfetch", true},
        {"findcoordinator", false},
    };
    return kParsed;
}

}  // namespace

bool kafka_key_topics_read(std::string_view api_key) {
    const auto& parsed = kafka_parsed_keys();
    const auto it = parsed.find(lower(api_key));
    return it != parsed.end() && it->second;
}

bool kafka_refusal_answered(std::string_view api_key) {
    return kafka_parsed_keys().contains(lower(api_key));
}

}  // namespace calcmesh::policy
