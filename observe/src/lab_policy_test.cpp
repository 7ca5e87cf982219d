// The shipped policies compiled for the lab's pods, without a lab: what every node's policy maps
// get, and how a wrong file is refused. `observe.lab` enforces them on a running lab.
#include "lab_policy.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "calcmesh/lab/identity.hpp"

namespace calcmesh::observe {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> shipped_policies(const lab::Topology& topology) {
    std::vector<fs::path> files;
    for (const auto& cluster : topology.clusters()) {
        files.push_back(fs::path(CALCMESH_RENDERED_DIR) / "policies" / (cluster.name + ".yaml"));
    }
    return files;
}

const lab::PolicyEntry* find_entry(const LabPolicy& compiled, std::uint32_t subject,
                                   lab::Direction direction, std::uint32_t peer,
                                   std::uint16_t port) {
    const auto& entries = compiled.enforced.entries;
    const auto found = std::find_if(entries.begin(), entries.end(), [&](const auto& entry) {
        return entry.subject == subject && entry.direction == direction && entry.peer == peer &&
               entry.port == port && entry.protocol == IPPROTO_TCP;
    });
    return found == entries.end() ? nullptr : &*found;
}

TEST(LabPolicy, ShippedPoliciesCompileToTheMapsOfTheLab) {
    const lab::Topology topology("cm");
    const lab::Identities identities(topology);
    const auto compiled = compile_lab_policy(topology, shipped_policies(topology));
    // The cluster-wide baseline selects every calcmesh pod: default deny both ways.
    EXPECT_EQ(compiled.enforced.default_deny.size(), 2 * identities.pods().size());

    const auto submitter = identities.of_pod("job-submitter");
    const auto worker = identities.of_pod("addition-worker");
    const auto* ingress = find_entry(compiled, worker, lab::Direction::ingress, submitter, 8091);
    ASSERT_NE(ingress, nullptr);
    EXPECT_FALSE(ingress->deny);
    EXPECT_TRUE(ingress->l7) << "GET /compute only: L7 rules, audited";
    ASSERT_TRUE(compiled.rules.contains(ingress->rule));
    const auto& rule = compiled.rules.at(ingress->rule);
    EXPECT_EQ(rule.name, "worker");
    EXPECT_EQ(rule.namespace_, "calcmesh");
    EXPECT_EQ(rule.kind, "CiliumNetworkPolicy");
    EXPECT_NE(find_entry(compiled, submitter, lab::Direction::egress, worker, 8091), nullptr);
    // A worker may not call job_submitter, at neither end.
    EXPECT_EQ(find_entry(compiled, submitter, lab::Direction::ingress, worker, 8080), nullptr);
    EXPECT_EQ(find_entry(compiled, worker, lab::Direction::egress, submitter, 8080), nullptr);
    // Users reach job_submitter from the world.
    EXPECT_NE(find_entry(compiled, submitter, lab::Direction::ingress, lab::kIdentityWorld, 8080),
              nullptr);

    // The same files give the same numbers, which the collector relies on.
    const auto again = compile_lab_policy(topology, shipped_policies(topology));
    EXPECT_EQ(again.enforced.entries, compiled.enforced.entries);
}

TEST(LabPolicy, AWrongFileIsRefusedNamingFileAndField) {
    const lab::Topology topology("cm");
    const auto dir = fs::temp_directory_path() / ("lab-policy-test-" + std::to_string(getpid()));
    fs::create_directories(dir);
    std::ifstream shipped(shipped_policies(topology)[2]);
    std::string yaml((std::istreambuf_iterator<char>(shipped)), {});
    const auto at = yaml.find("endpointSelector");
    ASSERT_NE(at, std::string::npos);
    yaml.replace(at, 16, "endpointSelektor");
    std::ofstream(dir / "c3a-workers.yaml") << yaml;
    fs::copy_file(shipped_policies(topology)[2], dir / "c9-nowhere.yaml");

    const auto message = [&](const fs::path& file) {
        try {
            compile_lab_policy(topology, {file});
        } catch (const std::invalid_argument& error) {
            return std::string(error.what());
        }
        return std::string("accepted");
    };
    const auto misspelt = message(dir / "c3a-workers.yaml");
    EXPECT_NE(misspelt.find("c3a-workers.yaml"), std::string::npos) << misspelt;
    EXPECT_NE(misspelt.find("spec.endpointSelektor"), std::string::npos) << misspelt;
    const auto unknown_cluster = message(dir / "c9-nowhere.yaml");
    EXPECT_NE(unknown_cluster.find("c9-nowhere"), std::string::npos) << unknown_cluster;
    const auto missing = message(dir / "c1-client.yaml");
    EXPECT_NE(missing.find("no such file"), std::string::npos) << missing;
    fs::remove_all(dir);
}

}  // namespace
}  // namespace calcmesh::observe
