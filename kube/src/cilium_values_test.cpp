#include "calcmesh/kube/cilium_values.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace calcmesh::kube {
namespace {

class CiliumValuesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("cilium-values-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::filesystem::path write(const std::string& name, const std::string& text) {
        std::ofstream(dir_ / name) << text;
        return dir_ / name;
    }

    std::filesystem::path dir_;
};

TEST_F(CiliumValuesTest, LaterFilesMergeIntoMapsAndReplaceOtherValues) {
    const auto common = write("common.yaml", R"(cluster: {name: default, id: 0}
ipam: {mode: cluster-pool, operator: {clusterPoolIPv4PodCIDRList: [10.0.0.0/8]}}
routingMode: tunnel
)");
    const auto own = write("c1.yaml", R"(cluster: {name: c1, id: 1}
ipam: {operator: {clusterPoolIPv4PodCIDRList: [10.1.0.0/16]}}
clustermesh: {apiserver: {service: {nodePort: 32379}}}
)");
    auto values = load_cilium_values({common, own});
    ASSERT_TRUE(values.has_value()) << values.error().message;
    EXPECT_EQ(values.value().cluster_name, "c1");
    EXPECT_EQ(values.value().cluster_id, 1);
    ASSERT_EQ(values.value().pod_cidrs.size(), 1U);
    EXPECT_EQ(values.value().pod_cidrs[0].text, "10.1.0.0/16");
    EXPECT_EQ(values.value().values["ipam"]["mode"].as<std::string>(), "cluster-pool");
    EXPECT_EQ(values.value().routing_mode, "tunnel");
    EXPECT_EQ(values.value().clustermesh_node_port, 32379);
    EXPECT_EQ(values.value().describe(), "common.yaml + c1.yaml");
}

TEST_F(CiliumValuesTest, ABadCidrNamesFileAndKey) {
    const auto file = write("c1.yaml", "ipv4NativeRoutingCIDR: 10.0.0.1/13\n");
    auto values = load_cilium_values({file});
    ASSERT_FALSE(values.has_value());
    EXPECT_EQ(values.error().message,
              "c1.yaml: ipv4NativeRoutingCIDR: '10.0.0.1/13' has host bits set");
}

TEST(Cidr, ContainsAndOverlaps) {
    const Cidr wide = Cidr::parse("10.0.0.0/13").value();
    const Cidr c1 = Cidr::parse("10.1.0.0/16").value();
    const Cidr c9 = Cidr::parse("10.9.0.0/16").value();
    const Cidr half = Cidr::parse("10.1.128.0/17").value();
    EXPECT_TRUE(wide.contains(c1));
    EXPECT_FALSE(wide.contains(c9));
    EXPECT_TRUE(c1.overlaps(half));
    EXPECT_TRUE(half.overlaps(c1));
    EXPECT_FALSE(c1.overlaps(c9));
    EXPECT_FALSE(Cidr::parse("10.1.0.0").has_value());
    EXPECT_FALSE(Cidr::parse("10.1.0.0/33").has_value());
    EXPECT_FALSE(Cidr::parse("10.1.0/16").has_value());
    EXPECT_TRUE(Cidr::parse("0.0.0.0/0").value().contains(c9));
}

}  // namespace
}  // namespace calcmesh::kube
