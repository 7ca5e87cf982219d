#include "calcmesh/kube/cilium_values.hpp"

#include <arpa/inet.h>

#include <fstream>
#include <sstream>

#include "calcmesh/kube/yaml.hpp"

namespace calcmesh::kube {

namespace {

YAML::Node merge(const YAML::Node& base, const YAML::Node& overlay) {
    if (!base.IsMap() || !overlay.IsMap()) {
        return YAML::Clone(overlay);
    }
    YAML::Node merged = YAML::Clone(base);
    for (const auto& entry : overlay) {
        const auto key = entry.first.Scalar();
        merged[key] = merged[key] ? merge(merged[key], entry.second) : YAML::Clone(entry.second);
    }
    return merged;
}

/// The value at a dotted path such as "cluster.name", or an undefined node.
YAML::Node lookup(const YAML::Node& root, const std::string& path) {
    YAML::Node node;
    node.reset(root);
    std::size_t start = 0;
    while (start <= path.size()) {
        const auto end = path.find('.', start);
        const auto key = path.substr(start, end - start);
        if (!node.IsMap() || !static_cast<const YAML::Node&>(node)[key]) {
            return YAML::Node(YAML::NodeType::Undefined);
        }
        node.reset(static_cast<const YAML::Node&>(node)[key]);
        if (end == std::string::npos) {
            break;
        }
        start = end + 1;
    }
    return node;
}

}  // namespace

Result<Cidr> Cidr::parse(const std::string& text) {
    const auto slash = text.find('/');
    in_addr address{};
    int prefix = -1;
    if (slash != std::string::npos) {
        try {
            std::size_t used = 0;
            prefix = std::stoi(text.substr(slash + 1), &used);
            if (used != text.size() - slash - 1) {
                prefix = -1;
            }
        } catch (const std::exception&) {
            prefix = -1;
        }
    }
    if (slash == std::string::npos || prefix < 0 || prefix > 32 ||
        inet_pton(AF_INET, text.substr(0, slash).c_str(), &address) != 1) {
        return fail(ErrorCode::invalid_field, "'" + text + "' is not an IPv4 CIDR");
    }
    const std::uint32_t base = ntohl(address.s_addr);
    const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
    if ((base & ~mask) != 0) {
        return fail(ErrorCode::invalid_field, "'" + text + "' has host bits set");
    }
    return Cidr{base, prefix, text};
}

bool Cidr::contains(const Cidr& other) const {
    const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
    return other.prefix >= prefix && (other.base & mask) == base;
}

bool Cidr::overlaps(const Cidr& other) const {
    return contains(other) || other.contains(*this);
}

std::string CiliumValues::describe() const {
    std::string text;
    for (const auto& file : files) {
        text += (text.empty() ? "" : " + ") + file;
    }
    return text;
}

Result<CiliumValues> load_cilium_values(const std::vector<std::filesystem::path>& files) {
    CiliumValues result;
    result.values = YAML::Node(YAML::NodeType::Map);
    for (const auto& file : files) {
        result.files.push_back(file.filename().string());
        std::ifstream in(file);
        if (!in) {
            return fail(ErrorCode::invalid_field, file.string() + ": cannot be read");
        }
        std::stringstream text;
        text << in.rdbuf();
        auto document = load_yaml_document(text.str());
        if (!document) {
            return fail(ErrorCode::invalid_field, file.string() + ": " + document.error().message);
        }
        try {
            const YAML::Node& node = document.value();
            if (!node.IsNull()) {
                if (!node.IsMap()) {
                    return fail(ErrorCode::invalid_field, file.string() + ": expected a map");
                }
                result.values = merge(result.values, node);
            }
        } catch (const YAML::Exception& error) {
            return fail(ErrorCode::invalid_field, file.string() + ": " + error.what());
        }
    }
    const std::string where = result.describe() + ": ";
    try {
        result.cluster_name = lookup(result.values, "cluster.name").as<std::string>("");
        result.cluster_id = lookup(result.values, "cluster.id").as<int>(0);
        result.routing_mode = lookup(result.values, "routingMode").as<std::string>("");
        result.clustermesh_node_port =
            lookup(result.values, "clustermesh.apiserver.service.nodePort").as<int>(0);
    } catch (const YAML::Exception& error) {
        return fail(ErrorCode::invalid_field, where +
                                                  "cluster.id, routingMode or "
                                                  "clustermesh.apiserver.service.nodePort: " +
                                                  error.what());
    }
    const YAML::Node pools = lookup(result.values, "ipam.operator.clusterPoolIPv4PodCIDRList");
    if (pools.IsDefined() && !pools.IsSequence()) {
        return fail(ErrorCode::invalid_field,
                    where + "ipam.operator.clusterPoolIPv4PodCIDRList: expected a list");
    }
    for (const auto& pool : pools) {
        auto cidr = Cidr::parse(pool.as<std::string>());
        if (!cidr) {
            return fail(
                ErrorCode::invalid_field,
                where + "ipam.operator.clusterPoolIPv4PodCIDRList: " + cidr.error().message);
        }
        result.pod_cidrs.push_back(std::move(cidr).value());
    }
    if (const YAML::Node native = lookup(result.values, "ipv4NativeRoutingCIDR");
        native.IsDefined()) {
        auto cidr = Cidr::parse(native.as<std::string>());
        if (!cidr) {
            return fail(ErrorCode::invalid_field,
                        where + "ipv4NativeRoutingCIDR: " + cidr.error().message);
        }
        result.native_routing_cidr = std::move(cidr).value();
    }
    return result;
}

}  // namespace calcmesh::kube
