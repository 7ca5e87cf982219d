#include "calcmesh/policy/inventory.hpp"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "calcmesh/kube/yaml.hpp"

namespace calcmesh::policy {

namespace {

Protocol protocol_of(const std::string& text) {
    return parse_protocol(text).value_or(Protocol::tcp);
}

}  // namespace

Inventory endpoints_of(const kube::Mesh& mesh) {
    Inventory inventory;
    for (const kube::Cluster& cluster : mesh.clusters) {
        for (const kube::Workload& workload : cluster.workloads) {
            std::vector<EndpointPort> ports;
            for (const kube::Container& container : workload.containers) {
                for (const kube::ContainerPort& port : container.ports) {
                    ports.push_back({port.name, port.port, protocol_of(port.protocol)});
                }
            }
            for (const kube::PodView& pod : workload.pods()) {
                Endpoint endpoint;
                endpoint.name = workload.id.kind == "StatefulSet" ? pod.name : workload.id.name;
                endpoint.cluster = cluster.name;
                endpoint.namespace_ = workload.id.namespace_;
                endpoint.labels = pod.labels;
                endpoint.ports = ports;
                endpoint.source = workload.id.to_string();
                endpoint.object_labels = workload.labels;
                inventory.push_back(std::move(endpoint));
            }
        }
    }
    return inventory;
}

Result<std::vector<Endpoint>> parse_platform(const std::string& file, const std::string& yaml) {
    std::vector<Endpoint> endpoints;
    std::string field = "endpoints";
    auto document = kube::load_yaml_document(yaml);
    if (!document) {
        return fail(ErrorCode::invalid_field, file + ": " + document.error().message);
    }
    try {
        const YAML::Node& root = document.value();
        const YAML::Node list = root["endpoints"];
        if (!list.IsSequence()) {
            return fail(ErrorCode::invalid_field, file + ": endpoints: expected a list");
        }
        for (std::size_t i = 0; i < list.size(); ++i) {
            field = "endpoints[" + std::to_string(i) + "]";
            const YAML::Node item = list[i];
            Endpoint endpoint;
            endpoint.name = item["name"].as<std::string>();
            endpoint.namespace_ = item["namespace"].as<std::string>();
            endpoint.labels = item["labels"].as<Labels>(Labels{});
            for (const YAML::Node& port : item["ports"]) {
                endpoint.ports.push_back({port["name"].as<std::string>(""), port["port"].as<int>(),
                                          protocol_of(port["protocol"].as<std::string>("TCP"))});
            }
            endpoint.external = true;
            endpoint.source = file + ": " + field;
            if (endpoint.name.empty() || endpoint.namespace_.empty()) {
                return fail(ErrorCode::missing_field,
                            file + ": " + field + ": needs a name and a namespace");
            }
            endpoints.push_back(std::move(endpoint));
        }
    } catch (const YAML::Exception& error) {
        return fail(ErrorCode::invalid_field, file + ": " + field + ": " + error.what());
    }
    return endpoints;
}

Result<Inventory> load_inventory(const kube::Mesh& mesh, const std::filesystem::path& platform) {
    std::ifstream in(platform);
    if (!in) {
        return fail(ErrorCode::not_found, platform.string() + ": cannot read");
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto extra = parse_platform(platform.filename().string(), text.str());
    if (!extra) {
        return extra.error();
    }
    Inventory inventory = endpoints_of(mesh);
    for (const kube::Cluster& cluster : mesh.clusters) {
        for (Endpoint endpoint : extra.value()) {
            endpoint.cluster = cluster.name;
            inventory.push_back(std::move(endpoint));
        }
    }
    return inventory;
}

}  // namespace calcmesh::policy
