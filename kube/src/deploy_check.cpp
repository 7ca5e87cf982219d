#include "calcmesh/kube/deploy_check.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "calcmesh/kube/binary_config.hpp"
#include "calcmesh/kube/calls.hpp"

namespace calcmesh::kube {

namespace {

const std::vector<std::string> kPodLabels = {
    "app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of"};

/// The clusters where a Service of this name has pods behind it.
std::vector<const Cluster*> serving_clusters(const Mesh& mesh, std::string_view service_namespace,
                                             std::string_view name) {
    std::vector<const Cluster*> result;
    for (const Cluster& cluster : mesh.clusters) {
        const Service* service = cluster.find_service(service_namespace, name);
        if (service != nullptr && !cluster.backends(*service).empty()) {
            result.push_back(&cluster);
        }
    }
    return result;
}

std::string names(const std::vector<const Cluster*>& clusters) {
    std::string text;
    for (const Cluster* cluster : clusters) {
        text += (text.empty() ? "" : ", ") + cluster->name;
    }
    return text;
}

void check_affinity(const Service& service, std::vector<Finding>& findings) {
    const auto it = service.annotations.find("service.cilium.io/affinity");
    if (it == service.annotations.end()) {
        return;
    }
    const std::string where = service.id.at("metadata.annotations.service.cilium.io/affinity");
    if (it->second == "none") {
        findings.push_back({where,
                            "\"none\" drops every remote backend in Cilium 1.18 "
                            "(cilium/cilium#46623); leave the annotation out instead"});
    } else if (it->second != "local" && it->second != "remote") {
        findings.push_back({where, "'" + it->second + "' is not local or remote"});
    } else if (!service.global()) {
        findings.push_back({where, "has no effect: the Service is not global"});
    }
}

/// Checks one call (or advertised address) made from `cluster`; `what` says who makes it.
void check_call(const Mesh& mesh, const Cluster& cluster, const Call& call, const std::string& what,
                std::vector<Finding>& findings) {
    if (!call.service) {
        findings.push_back({call.source, what + " " + call.address.to_string() +
                                             ": not a Service name of the cluster DNS"});
        return;
    }
    const auto& [namespace_, name] = *call.service;
    const Service* service = cluster.find_service(namespace_, name);
    if (service == nullptr) {
        findings.push_back({call.source, what + " " + call.address.to_string() + " but " +
                                             cluster.file + " has no Service " + namespace_ + "/" +
                                             name + ", so the name does not resolve in " +
                                             cluster.name});
        return;
    }
    if (service->find_port(call.address.port) == nullptr) {
        findings.push_back({call.source, what + " " + call.address.to_string() + " but " +
                                             service->id.to_string() + " has no port " +
                                             std::to_string(call.address.port)});
    }
    if (!cluster.backends(*service).empty()) {
        return;  // served in the caller's own cluster
    }
    const auto serving = serving_clusters(mesh, namespace_, name);
    if (serving.empty()) {
        findings.push_back({call.source, what + " " + call.address.to_string() +
                                             " but no cluster runs pods for Service " + namespace_ +
                                             "/" + name});
        return;
    }
    if (!service->global()) {
        findings.push_back({service->id.at("metadata.annotations"),
                            "its pods run in " + names(serving) + " only; " + what + " it from " +
                                cluster.name +
                                ", so it needs service.cilium.io/global: \"true\" here"});
    }
    if (service->headless) {
        findings.push_back({service->id.at("spec.clusterIP"),
                            "a headless Service has no ClusterIP for Cilium to route to "
                            "the backends of " +
                                names(serving)});
    }
    for (const Cluster* other : serving) {
        const Service* remote = other->find_service(namespace_, name);
        if (!remote->global()) {
            findings.push_back({remote->id.at("metadata.annotations"),
                                cluster.name + " calls it across the mesh (" +
                                    call.address.to_string() +
                                    "), so it needs service.cilium.io/global: \"true\""});
        } else if (!remote->shared()) {
            findings.push_back({remote->id.at("metadata.annotations.service.cilium.io/shared"),
                                "\"false\" hides these backends from " + cluster.name +
                                    ", which calls " + call.address.to_string()});
        }
    }
}

std::string first_word_after_slash(const std::string& path) {
    return path.substr(path.rfind('/') + 1);
}

}  // namespace

bool is_calcmesh_image(const std::string& image) {
    std::string repository = image.substr(0, image.find('@'));
    const auto slash = repository.rfind('/');
    const auto colon = repository.rfind(':');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
        repository.resize(colon);
    }
    return first_word_after_slash(repository) == "calcmesh";
}

Result<ImageSpec> load_dockerfile(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) {
        return fail(ErrorCode::not_found, path.string() + ": cannot read");
    }
    // Instructions: continuation lines joined, comments dropped.
    std::vector<std::string> instructions;
    std::string line;
    std::string current;
    while (std::getline(in, line)) {
        const auto start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#') {
            continue;
        }
        const bool continued = !line.empty() && line.back() == '\\';
        current += line.substr(start, line.size() - start - (continued ? 1 : 0)) + " ";
        if (!continued) {
            instructions.push_back(current);
            current.clear();
        }
    }
    ImageSpec spec{path.filename().string(), {}};
    for (const std::string& instruction : instructions) {
        std::istringstream words(instruction);
        std::vector<std::string> parts;
        for (std::string word; words >> word;) {
            parts.push_back(word);
        }
        std::string keyword = parts.front();
        std::transform(keyword.begin(), keyword.end(), keyword.begin(), ::toupper);
        if (keyword == "FROM") {
            spec.entrypoints.clear();  // only the last stage is the image
        } else if (keyword == "COPY" && parts.size() >= 3) {
            std::vector<std::string> sources;
            for (std::size_t i = 1; i + 1 < parts.size(); ++i) {
                if (parts[i].rfind("--", 0) != 0) {
                    sources.push_back(parts[i]);
                }
            }
            const std::string& destination = parts.back();
            if (destination.find("bin/") == std::string::npos) {
                continue;  // not a place for executables
            }
            if (destination.back() == '/') {
                for (const std::string& source : sources) {
                    spec.entrypoints.push_back(destination + first_word_after_slash(source));
                }
            } else if (sources.size() == 1) {
                spec.entrypoints.push_back(destination);
            }
        }
    }
    return spec;
}

Result<DeployInputs> load_deploy_inputs(const std::filesystem::path& rendered_dir,
                                        const std::filesystem::path& cilium_dir,
                                        const std::filesystem::path& dockerfile,
                                        const std::filesystem::path& bin_dir) {
    DeployInputs inputs;
    auto mesh = load_mesh(rendered_dir);
    if (!mesh) {
        return mesh.error();
    }
    inputs.mesh = std::move(mesh).value();
    const auto common = cilium_dir / "common.yaml";
    for (const Cluster& cluster : inputs.mesh.clusters) {
        const auto own = cilium_dir / (cluster.name + ".yaml");
        if (!std::filesystem::exists(own)) {
            return fail(ErrorCode::not_found, own.string() + ": no Cilium values for cluster " +
                                                  cluster.name + " (" + cluster.file + ")");
        }
        auto values = load_cilium_values({common, own});
        if (!values) {
            return values.error();
        }
        inputs.cilium.emplace(cluster.name, std::move(values).value());
    }
    std::vector<std::filesystem::path> datapaths;
    for (const auto& entry : std::filesystem::directory_iterator(cilium_dir)) {
        if (entry.path().filename().string().rfind("datapath-", 0) == 0) {
            datapaths.push_back(entry.path());
        }
    }
    std::sort(datapaths.begin(), datapaths.end());
    for (const auto& file : datapaths) {
        auto values = load_cilium_values({common, file});
        if (!values) {
            return values.error();
        }
        inputs.datapaths.push_back(std::move(values).value());
    }
    auto image = load_dockerfile(dockerfile);
    if (!image) {
        return image.error();
    }
    inputs.image = std::move(image).value();
    inputs.bin_dir = bin_dir;
    return inputs;
}

std::vector<Finding> check_pod_labels(const Mesh& mesh) {
    std::vector<Finding> findings;
    for (const Cluster& cluster : mesh.clusters) {
        for (const Workload& workload : cluster.workloads) {
            const std::string field = workload.template_field + ".metadata.labels";
            for (const std::string& key : kPodLabels) {
                if (workload.pod_labels.contains(key)) {
                    continue;
                }
                std::string message = "missing " + key;
                if (workload.labels.contains(key)) {
                    message += ": it is on the " + workload.id.kind +
                               " only, and Services and policies select pods by the labels of "
                               "the pod template";
                }
                findings.push_back({workload.id.at(field), message});
            }
            const auto part_of = workload.pod_labels.find("app.kubernetes.io/part-of");
            if (part_of != workload.pod_labels.end() && part_of->second != "calcmesh") {
                findings.push_back({workload.id.at(field + ".app.kubernetes.io/part-of"),
                                    "is '" + part_of->second + "', not calcmesh"});
            }
            if (workload.selector && !workload.selector->matches(workload.pod_labels)) {
                findings.push_back({workload.id.at("spec.selector"),
                                    "does not match the labels of its own pod template"});
            }
        }
    }
    return findings;
}

std::vector<Finding> check_selectors(const Mesh& mesh) {
    std::vector<Finding> findings;
    for (const Cluster& cluster : mesh.clusters) {
        for (const Service& service : cluster.services) {
            check_affinity(service, findings);
            if (!service.selector || service.selector->empty()) {
                findings.push_back({service.id.at("spec.selector"),
                                    "missing: every calcmesh Service selects its pods (a global "
                                    "Service without one loses remote backends in Cilium 1.17)"});
                continue;
            }
            const auto backends = cluster.backends(service);
            if (backends.empty()) {
                const auto serving = serving_clusters(mesh, service.id.namespace_, service.id.name);
                if (!service.global()) {
                    findings.push_back(
                        {service.id.at("spec.selector"),
                         "selects no pod in " + cluster.name +
                             (serving.empty()
                                  ? std::string()
                                  : " (its pods run in " + names(serving) + ": make it global)")});
                } else if (serving.empty()) {
                    findings.push_back({service.id.at("spec.selector"),
                                        "selects no pod in any cluster of the mesh"});
                }
                continue;
            }
            for (const SelectedPod& backend : backends) {
                for (const ServicePort& port : service.ports) {
                    const bool found = std::any_of(
                        backend.workload->containers.begin(), backend.workload->containers.end(),
                        [&](const Container& container) {
                            const auto number = container.resolve_port(port.target_port);
                            return number &&
                                   std::any_of(container.ports.begin(), container.ports.end(),
                                               [&](const ContainerPort& declared) {
                                                   return declared.port == *number;
                                               });
                        });
                    if (!found) {
                        findings.push_back(
                            {service.id.at("spec.ports." + port.name + ".targetPort"),
                             "'" + port.target_port + "' is not a declared port of " +
                                 backend.workload->id.kind + " " + backend.workload->id.name});
                    }
                }
            }
        }
    }
    return findings;
}

std::vector<Finding> check_calls(const Mesh& mesh) {
    std::vector<Finding> findings;
    std::map<std::string, std::vector<Call>> advertised;  // cluster name -> advertised addresses
    for (const Cluster& cluster : mesh.clusters) {
        auto found = find_calls(cluster, is_advertised_variable);
        if (!found) {
            findings.push_back({cluster.file, found.error().message});
            continue;
        }
        advertised[cluster.name] = std::move(found).value();
    }
    for (const Cluster& cluster : mesh.clusters) {
        auto calls = find_calls(cluster, is_call_variable);
        if (!calls) {
            findings.push_back({cluster.file, calls.error().message});
            continue;
        }
        for (const Call& call : calls.value()) {
            check_call(mesh, cluster, call, call.from->id.name + " calls", findings);
            if (!call.service) {
                continue;
            }
            // A client goes on to the addresses the server advertises: they must work from
            // the caller's cluster too.
            for (const Cluster& server_cluster : mesh.clusters) {
                const Service* service =
                    server_cluster.find_service(call.service->namespace_, call.service->name);
                if (service == nullptr) {
                    continue;
                }
                std::set<const Workload*> servers;
                for (const SelectedPod& backend : server_cluster.backends(*service)) {
                    servers.insert(backend.workload);
                }
                for (Call given : advertised[server_cluster.name]) {
                    if (!servers.contains(given.from)) {
                        continue;
                    }
                    given.service = service_of_host(given.address.host, call.from->id.namespace_);
                    check_call(mesh, cluster, given,
                               given.from->id.name + " (" + server_cluster.name +
                                   ") advertises to " + call.from->id.name + " in " + cluster.name,
                               findings);
                }
            }
        }
    }
    // The same finding can come from several callers; report it once.
    std::vector<Finding> unique;
    std::set<std::string> seen;
    for (Finding& finding : findings) {
        if (seen.insert(finding.to_string()).second) {
            unique.push_back(std::move(finding));
        }
    }
    return unique;
}

std::vector<Finding> check_binaries(const Mesh& mesh, const ImageSpec& image,
                                    const std::filesystem::path& bin_dir) {
    std::vector<Finding> findings;
    for (const Cluster& cluster : mesh.clusters) {
        std::set<std::string> used_config_maps;
        for (const Workload& workload : cluster.workloads) {
            for (const auto* containers : {&workload.init_containers, &workload.containers}) {
                for (const Container& container : *containers) {
                    for (const EnvFromSource& source : container.env_from) {
                        used_config_maps.insert(source.config_map);
                    }
                    for (const EnvVar& var : container.env) {
                        used_config_maps.insert(var.config_map);
                    }
                }
            }
            for (const Volume& volume : workload.volumes) {
                used_config_maps.insert(volume.config_map);
            }
            for (const Container& container : workload.containers) {
                if (!is_calcmesh_image(container.image)) {
                    continue;
                }
                const std::string where = workload.id.at(container.field);
                if (container.command.empty()) {
                    findings.push_back({where + ".command",
                                        "missing: the calcmesh image has no default entrypoint"});
                    continue;
                }
                const std::string& entrypoint = container.command.front();
                if (std::find(image.entrypoints.begin(), image.entrypoints.end(), entrypoint) ==
                    image.entrypoints.end()) {
                    findings.push_back(
                        {where + ".command[0]",
                         entrypoint + " is not copied into the image by " + image.file});
                    continue;
                }
                const auto binary = bin_dir / first_word_after_slash(entrypoint);
                auto environment = resolve_environment(cluster, workload, container);
                if (!environment) {
                    findings.push_back({where, environment.error().message});
                    continue;
                }
                std::map<std::string, std::string> values;
                for (const ResolvedVar& var : environment.value()) {
                    // Known only in the pod (fieldRef, Secret): any text stands in for it.
                    values[var.name] = var.value.value_or("set-at-run-time");
                }
                std::vector<std::string> args(container.command.begin() + 1,
                                              container.command.end());
                args.insert(args.end(), container.args.begin(), container.args.end());
                auto keys = print_config(binary, args, values);
                if (!keys) {
                    findings.push_back({where, keys.error().message});
                    continue;
                }
                const std::string name = binary.filename().string();
                for (const ResolvedVar& var : environment.value()) {
                    if (!keys.value().contains(var.name)) {
                        findings.push_back({var.source, var.name +
                                                            " is not a configuration key "
                                                            "of " +
                                                            name + " (see " + name +
                                                            " --print-config)"});
                    }
                }
                const auto& config = keys.value();
                const auto get = [&config](const std::string& key) {
                    const auto it = config.find(key);
                    return it == config.end() ? std::string() : it->second;
                };
                const std::string address = get("CALCMESH_LISTEN_ADDRESS");
                if (address.empty() || address == "127.0.0.1" || address == "localhost" ||
                    address == "::1") {
                    findings.push_back({where, name + " listens on '" + address +
                                                   "': set CALCMESH_LISTEN_ADDRESS=0.0.0.0 so "
                                                   "that Services and probes reach it"});
                }
                if (get("CALCMESH_CLUSTER") != cluster.name) {
                    findings.push_back({where, name + " reports cluster '" +
                                                   get("CALCMESH_CLUSTER") + "', but " +
                                                   cluster.file + " is cluster " + cluster.name +
                                                   ": set CALCMESH_CLUSTER"});
                }
                int port = 0;
                try {
                    port = std::stoi(get("CALCMESH_PORT"));
                } catch (const std::exception&) {
                    port = 0;
                }
                if (port <= 0) {
                    findings.push_back({where, name + " has no fixed port (CALCMESH_PORT='" +
                                                   get("CALCMESH_PORT") + "')"});
                    continue;
                }
                if (container.ports.empty()) {
                    findings.push_back({where + ".ports", "missing: " + name + " listens on " +
                                                              std::to_string(port)});
                }
                bool ports_match = true;
                for (std::size_t i = 0; i < container.ports.size(); ++i) {
                    if (container.ports[i].port != port) {
                        ports_match = false;
                        findings.push_back(
                            {where + ".ports[" + std::to_string(i) + "].containerPort",
                             std::to_string(container.ports[i].port) + ", but " + name +
                                 " listens on " + std::to_string(port) + " (CALCMESH_PORT)"});
                    }
                }
                for (const auto& [probe_name, probe] :
                     {std::pair{"readinessProbe", container.readiness},
                      std::pair{"livenessProbe", container.liveness}}) {
                    if (!probe) {
                        findings.push_back({where + "." + probe_name, "missing"});
                    } else if (ports_match && container.resolve_port(probe->port) != port) {
                        findings.push_back({where + "." + probe_name + ".port",
                                            "'" + probe->port + "' is not port " +
                                                std::to_string(port) + ", where " + name +
                                                " listens"});
                    }
                }
                if (::access(binary.c_str(), X_OK) != 0) {
                    findings.push_back({where + ".command[0]", binary.string() + " is not built"});
                }
            }
        }
        for (const ConfigMap& config_map : cluster.config_maps) {
            if (!used_config_maps.contains(config_map.id.name)) {
                findings.push_back({config_map.id.to_string(), "no container reads it"});
            }
        }
    }
    return findings;
}

std::vector<Finding> check_cilium(const Mesh& mesh,
                                  const std::map<std::string, CiliumValues>& cilium,
                                  const std::vector<CiliumValues>& datapaths) {
    std::vector<Finding> findings;
    static const std::regex kName("[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?");
    std::map<int, std::string> ids;
    std::map<int, std::string> node_ports;
    std::vector<std::pair<std::string, Cidr>> pools;
    for (const Cluster& cluster : mesh.clusters) {
        const auto it = cilium.find(cluster.name);
        if (it == cilium.end()) {
            findings.push_back({cluster.file, "no Cilium values for cluster " + cluster.name});
            continue;
        }
        const CiliumValues& values = it->second;
        const std::string where = values.describe();
        if (values.cluster_name != cluster.name) {
            findings.push_back({where + ": cluster.name",
                                "'" + values.cluster_name + "', but the manifests are for " +
                                    cluster.name + " (" + cluster.file + ")"});
        }
        if (!std::regex_match(values.cluster_name, kName)) {
            findings.push_back(
                {where + ": cluster.name",
                 "'" + values.cluster_name + "' is not 1 to 32 lowercase letters, digits and '-'"});
        }
        if (values.cluster_id < 1 || values.cluster_id > 255) {
            findings.push_back(
                {where + ": cluster.id", std::to_string(values.cluster_id) + " is not in 1..255"});
        } else if (const auto [old, added] = ids.emplace(values.cluster_id, cluster.name); !added) {
            findings.push_back({where + ": cluster.id", std::to_string(values.cluster_id) +
                                                            " is also the id of " + old->second});
        }
        if (values.clustermesh_node_port != 0) {
            if (const auto [old, added] =
                    node_ports.emplace(values.clustermesh_node_port, cluster.name);
                !added) {
                findings.push_back({where + ": clustermesh.apiserver.service.nodePort",
                                    std::to_string(values.clustermesh_node_port) +
                                        " is also used by " + old->second +
                                        " (cilium/cilium#24692)"});
            }
        }
        if (values.pod_cidrs.empty()) {
            findings.push_back({where + ": ipam.operator.clusterPoolIPv4PodCIDRList", "missing"});
        }
        for (const Cidr& pool : values.pod_cidrs) {
            for (const auto& [other, other_pool] : pools) {
                if (pool.overlaps(other_pool)) {
                    findings.push_back(
                        {where + ": ipam.operator.clusterPoolIPv4PodCIDRList",
                         pool.text + " overlaps " + other_pool.text + " of " + other});
                }
            }
            pools.emplace_back(cluster.name, pool);
        }
    }
    for (const CiliumValues& datapath : datapaths) {
        if (datapath.routing_mode != "native" && datapath.routing_mode != "tunnel") {
            findings.push_back({datapath.describe() + ": routingMode",
                                "'" + datapath.routing_mode + "' is not native or tunnel"});
        }
        if (datapath.routing_mode != "native") {
            continue;
        }
        if (!datapath.native_routing_cidr) {
            findings.push_back({datapath.describe() + ": ipv4NativeRoutingCIDR",
                                "missing: native routing needs it to cover every cluster"});
            continue;
        }
        for (const auto& [cluster, pool] : pools) {
            if (!datapath.native_routing_cidr->contains(pool)) {
                findings.push_back({datapath.describe() + ": ipv4NativeRoutingCIDR",
                                    datapath.native_routing_cidr->text + " does not cover " +
                                        pool.text + " of " + cluster});
            }
        }
    }
    return findings;
}

std::vector<Finding> check_deploy(const DeployInputs& inputs) {
    std::vector<Finding> findings;
    for (auto part :
         {check_pod_labels(inputs.mesh), check_selectors(inputs.mesh), check_calls(inputs.mesh),
          check_binaries(inputs.mesh, inputs.image, inputs.bin_dir),
          check_cilium(inputs.mesh, inputs.cilium, inputs.datapaths)}) {
        findings.insert(findings.end(), part.begin(), part.end());
    }
    return findings;
}

}  // namespace calcmesh::kube
