// Policy files as calcmesh policy reads them: any text, under a cluster's file name.

#include <string>

#include "calcmesh/policy/policy.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace calcmesh;
    const std::string file = "c1-client.yaml";
    const auto loaded =
        policy::parse_policies(file, "c1-client", std::string(fuzz::as_text(data, size)));
    // Every finding says where and what; every policy read belongs to the file and its cluster.
    for (const auto& finding : loaded.findings) {
        fuzz::check(finding.where.starts_with(file) && !finding.message.empty(),
                    "a finding without its place or its message", finding.to_string());
    }
    for (const auto& policy : loaded.set.policies) {
        fuzz::check(policy.id.file == file && policy.cluster == "c1-client",
                    "a policy read into another file or cluster", policy.id.to_string());
    }
    return 0;
}
