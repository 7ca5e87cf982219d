#include "calcmesh/kube/model.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "calcmesh/kube/yaml.hpp"

namespace calcmesh::kube {

namespace {

/// Thrown inside the parser only; parse_cluster turns it into a failed Result.
struct FieldError {
    std::string field;
    std::string message;
};

/// Tells a problem by throwing it, so that a cluster's manifests are read up to the first.
const FieldProblem kStopAtFirst = [](const std::string& field, const std::string& message) {
    throw FieldError{field, message};
};

/// An integer or a name, as Kubernetes' IntOrString, kept as text.
std::string int_or_string(const YamlField& field) {
    if (field.present() && !field.node().IsScalar()) {
        field.problem("expected a port number or name");
        return {};
    }
    return field.text();
}

/// A list of strings such as a command line; plain numbers are read as text.
std::vector<std::string> texts(const YamlField& field) {
    std::vector<std::string> result;
    for (const YamlField& item : field.items()) {
        result.push_back(item.text());
    }
    return result;
}

LabelSelector parse_selector(const YamlField& field) {
    LabelSelector selector;
    selector.match_labels = field["matchLabels"].string_map();
    for (const YamlField& item : field["matchExpressions"].items()) {
        SelectorRequirement requirement{item["key"].text(), item["operator"].text(),
                                        texts(item["values"])};
        static const std::set<std::string> kOperators = {"In", "NotIn", "Exists", "DoesNotExist"};
        if (!kOperators.contains(requirement.op)) {
            throw FieldError{item["operator"].path(), "unknown operator '" + requirement.op + "'"};
        }
        selector.match_expressions.push_back(std::move(requirement));
    }
    return selector;
}

std::optional<Probe> parse_probe(const YamlField& field) {
    if (!field.present()) {
        return std::nullopt;
    }
    if (field["httpGet"].present()) {
        return Probe{field["httpGet"]["path"].text("/"), int_or_string(field["httpGet"]["port"])};
    }
    if (field["tcpSocket"].present()) {
        return Probe{"", int_or_string(field["tcpSocket"]["port"])};
    }
    return Probe{};  // exec or grpc: no port to resolve
}

Container parse_container(const YamlField& field) {
    Container container;
    container.field = field.path();
    container.name = field["name"].text();
    container.image = field["image"].text();
    container.command = texts(field["command"]);
    container.args = texts(field["args"]);
    for (const YamlField& item : field["ports"].items()) {
        ContainerPort port;
        port.name = item["name"].text();
        const auto number = item["containerPort"].integer();
        if (!number) {
            throw FieldError{item["containerPort"].path(), "missing"};
        }
        port.port = *number;
        port.protocol = item["protocol"].text("TCP");
        container.ports.push_back(std::move(port));
    }
    for (const YamlField& item : field["env"].items()) {
        EnvVar var;
        var.name = item["name"].text();
        const YamlField from = item["valueFrom"];
        if (!from.present()) {
            var.value = item["value"].text();
        } else if (from["fieldRef"].present()) {
            var.field_path = from["fieldRef"]["fieldPath"].text();
        } else if (from["configMapKeyRef"].present()) {
            var.config_map = from["configMapKeyRef"]["name"].text();
            var.config_map_key = from["configMapKeyRef"]["key"].text();
        } else {
            var.runtime_only = true;
        }
        container.env.push_back(std::move(var));
    }
    for (const YamlField& item : field["envFrom"].items()) {
        EnvFromSource source;
        source.prefix = item["prefix"].text();
        if (item["configMapRef"].present()) {
            source.config_map = item["configMapRef"]["name"].text();
            source.optional = item["configMapRef"]["optional"].boolean().value_or(false);
        } else {
            source.secret = item["secretRef"]["name"].text();
        }
        container.env_from.push_back(std::move(source));
    }
    container.readiness = parse_probe(field["readinessProbe"]);
    container.liveness = parse_probe(field["livenessProbe"]);
    for (const YamlField& item : field["volumeMounts"].items()) {
        container.mounts.push_back({item["name"].text(), item["mountPath"].text()});
    }
    return container;
}

const std::set<std::string> kWorkloadKinds = {"Deployment", "StatefulSet", "DaemonSet",
                                              "ReplicaSet", "Job",         "CronJob"};

Workload parse_workload(const ObjectId& id, const YamlField& root) {
    Workload workload;
    workload.id = id;
    workload.labels = root["metadata"]["labels"].string_map();
    workload.annotations = root["metadata"]["annotations"].string_map();
    YamlField spec = root["spec"];
    if (id.kind == "CronJob") {
        spec = spec["jobTemplate"]["spec"];
    }
    workload.template_field = join_field(spec.path(), "template");
    if (id.kind != "Job" && id.kind != "CronJob") {
        if (!spec["selector"].present()) {
            throw FieldError{spec["selector"].path(), "missing"};
        }
        workload.selector = parse_selector(spec["selector"]);
    }
    if (id.kind == "Deployment" || id.kind == "StatefulSet" || id.kind == "ReplicaSet") {
        workload.replicas = spec["replicas"].integer().value_or(1);
    }
    const YamlField pod = spec["template"];
    workload.pod_labels = pod["metadata"]["labels"].string_map();
    workload.pod_annotations = pod["metadata"]["annotations"].string_map();
    for (const YamlField& item : pod["spec"]["initContainers"].items()) {
        workload.init_containers.push_back(parse_container(item));
    }
    for (const YamlField& item : pod["spec"]["containers"].items()) {
        workload.containers.push_back(parse_container(item));
    }
    for (const YamlField& item : pod["spec"]["volumes"].items()) {
        Volume volume;
        volume.name = item["name"].text();
        volume.claim_name = item["persistentVolumeClaim"]["claimName"].text();
        volume.config_map = item["configMap"]["name"].text();
        volume.empty_dir = item.node().IsMap() && item.node()["emptyDir"].IsDefined();
        workload.volumes.push_back(std::move(volume));
    }
    for (const YamlField& item : spec["volumeClaimTemplates"].items()) {
        workload.claim_templates.push_back(item["metadata"]["name"].text());
    }
    return workload;
}

Service parse_service(const ObjectId& id, const YamlField& root) {
    Service service;
    service.id = id;
    service.labels = root["metadata"]["labels"].string_map();
    service.annotations = root["metadata"]["annotations"].string_map();
    const YamlField spec = root["spec"];
    if (spec["selector"].present()) {
        service.selector = spec["selector"].string_map();
    }
    service.type = spec["type"].text("ClusterIP");
    service.headless = spec["clusterIP"].text() == "None";
    for (const YamlField& item : spec["ports"].items()) {
        ServicePort port;
        port.name = item["name"].text();
        const auto number = item["port"].integer();
        if (!number) {
            throw FieldError{item["port"].path(), "missing"};
        }
        port.port = *number;
        port.target_port = int_or_string(item["targetPort"]);
        if (port.target_port.empty()) {
            port.target_port = std::to_string(port.port);
        }
        port.protocol = item["protocol"].text("TCP");
        port.node_port = item["nodePort"].integer().value_or(0);
        service.ports.push_back(std::move(port));
    }
    return service;
}

bool is_number(const std::string& text) {
    return !text.empty() && std::all_of(text.begin(), text.end(),
                                        [](unsigned char c) { return std::isdigit(c) != 0; });
}

template <class T>
const T* find_named(const std::vector<T>& objects, std::string_view object_namespace,
                    std::string_view name) {
    for (const T& object : objects) {
        if (object.id.namespace_ == object_namespace && object.id.name == name) {
            return &object;
        }
    }
    return nullptr;
}

}  // namespace

std::string ObjectId::to_string() const {
    std::string text = file + ": " + kind + " ";
    if (!namespace_.empty()) {
        text += namespace_ + "/";
    }
    return text + name;
}

std::string ObjectId::at(std::string_view field) const {
    return to_string() + ": " + std::string(field);
}

bool LabelSelector::matches(const Labels& labels) const {
    for (const auto& [key, value] : match_labels) {
        const auto it = labels.find(key);
        if (it == labels.end() || it->second != value) {
            return false;
        }
    }
    for (const SelectorRequirement& requirement : match_expressions) {
        const auto it = labels.find(requirement.key);
        const bool has = it != labels.end();
        const bool listed = has && std::find(requirement.values.begin(), requirement.values.end(),
                                             it->second) != requirement.values.end();
        if ((requirement.op == "In" && !listed) || (requirement.op == "NotIn" && listed) ||
            (requirement.op == "Exists" && !has) || (requirement.op == "DoesNotExist" && has)) {
            return false;
        }
    }
    return true;
}

std::optional<int> Container::resolve_port(const std::string& number_or_name) const {
    if (is_number(number_or_name)) {
        return std::stoi(number_or_name);
    }
    for (const ContainerPort& port : ports) {
        if (port.name == number_or_name) {
            return port.port;
        }
    }
    return std::nullopt;
}

std::vector<PodView> Workload::pods() const {
    if (id.kind != "StatefulSet") {
        return {PodView{id.name + "-*", pod_labels}};
    }
    std::vector<PodView> pods;
    for (int ordinal = 0; ordinal < replicas; ++ordinal) {
        PodView pod{id.name + "-" + std::to_string(ordinal), pod_labels};
        pod.labels["statefulset.kubernetes.io/pod-name"] = pod.name;
        pod.labels["apps.kubernetes.io/pod-index"] = std::to_string(ordinal);
        pods.push_back(std::move(pod));
    }
    return pods;
}

bool Service::global() const {
    for (const char* key : {"service.cilium.io/global", "io.cilium/global-service"}) {
        const auto it = annotations.find(key);
        if (it != annotations.end() && it->second == "true") {
            return true;
        }
    }
    return false;
}

bool Service::shared() const {
    const auto it = annotations.find("service.cilium.io/shared");
    return it == annotations.end() || it->second != "false";
}

std::string Service::affinity() const {
    const auto it = annotations.find("service.cilium.io/affinity");
    return it == annotations.end() ? std::string() : it->second;
}

const ServicePort* Service::find_port(int port) const {
    for (const ServicePort& candidate : ports) {
        if (candidate.port == port) {
            return &candidate;
        }
    }
    return nullptr;
}

const Service* Cluster::find_service(std::string_view object_namespace,
                                     std::string_view name) const {
    return find_named(services, object_namespace, name);
}

const ConfigMap* Cluster::find_config_map(std::string_view object_namespace,
                                          std::string_view name) const {
    return find_named(config_maps, object_namespace, name);
}

const Workload* Cluster::find_workload(std::string_view object_namespace,
                                       std::string_view name) const {
    return find_named(workloads, object_namespace, name);
}

std::vector<SelectedPod> Cluster::select_pods(std::string_view object_namespace,
                                              const LabelSelector& selector) const {
    std::vector<SelectedPod> selected;
    for (const Workload& workload : workloads) {
        if (workload.id.namespace_ != object_namespace) {
            continue;
        }
        for (PodView& pod : workload.pods()) {
            if (selector.matches(pod.labels)) {
                selected.push_back({&workload, std::move(pod)});
            }
        }
    }
    return selected;
}

std::vector<SelectedPod> Cluster::backends(const Service& service) const {
    if (!service.selector || service.selector->empty()) {
        return {};
    }
    return select_pods(service.id.namespace_, LabelSelector{*service.selector, {}});
}

const Cluster* Mesh::find(std::string_view name) const {
    for (const Cluster& cluster : clusters) {
        if (cluster.name == name) {
            return &cluster;
        }
    }
    return nullptr;
}

Result<Cluster> parse_cluster(const std::string& file, const std::string& yaml) {
    Cluster cluster;
    cluster.file = std::filesystem::path(file).filename().string();
    cluster.name = std::filesystem::path(file).stem().string();
    auto loaded = load_yaml_documents(yaml);
    if (!loaded) {
        return fail(ErrorCode::invalid_field, cluster.file + ": " + loaded.error().message);
    }
    const std::vector<YAML::Node>& documents = loaded.value();
    for (std::size_t index = 0; index < documents.size(); ++index) {
        const YAML::Node& document = documents[index];
        if (!document.IsDefined() || document.IsNull()) {
            continue;
        }
        ObjectId id{cluster.file, "", "", "document " + std::to_string(index + 1)};
        try {
            const YamlField root(document, "", kStopAtFirst);
            root.expect_map();
            id.kind = root["kind"].text();
            id.name = root["metadata"]["name"].text();
            id.namespace_ = root["metadata"]["namespace"].text();
            if (id.kind.empty() || id.name.empty()) {
                throw FieldError{id.kind.empty() ? "kind" : "metadata.name", "missing"};
            }
            Object object{id, root["apiVersion"].text(), root["metadata"]["labels"].string_map(),
                          root["metadata"]["annotations"].string_map(), document};
            if (kWorkloadKinds.contains(id.kind)) {
                cluster.workloads.push_back(parse_workload(id, root));
            } else if (id.kind == "Service") {
                cluster.services.push_back(parse_service(id, root));
            } else if (id.kind == "ConfigMap") {
                cluster.config_maps.push_back({id, object.labels, root["data"].string_map()});
            } else if (id.kind == "PersistentVolumeClaim") {
                cluster.claims.push_back({id});
            }
            cluster.objects.push_back(std::move(object));
        } catch (const FieldError& error) {
            return fail(ErrorCode::invalid_field, id.at(error.field) + ": " + error.message,
                        error.field);
        } catch (const YAML::Exception& error) {
            return fail(ErrorCode::invalid_field, id.to_string() + ": " + error.what());
        }
    }
    return cluster;
}

Result<Cluster> load_cluster(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) {
        return fail(ErrorCode::not_found, path.string() + ": cannot read");
    }
    std::ostringstream text;
    text << in.rdbuf();
    return parse_cluster(path.filename().string(), text.str());
}

Result<Mesh> load_mesh(const std::filesystem::path& directory) {
    std::error_code error;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
        if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
            files.push_back(entry.path());
        }
    }
    if (error) {
        return fail(ErrorCode::not_found, directory.string() + ": " + error.message());
    }
    if (files.empty()) {
        return fail(ErrorCode::not_found, directory.string() + ": no rendered *.yaml files");
    }
    std::sort(files.begin(), files.end());
    Mesh mesh;
    for (const auto& file : files) {
        auto cluster = load_cluster(file);
        if (!cluster) {
            return cluster.error();
        }
        mesh.clusters.push_back(std::move(cluster).value());
    }
    return mesh;
}

Result<std::vector<ResolvedVar>> resolve_environment(const Cluster& cluster,
                                                     const Workload& workload,
                                                     const Container& container) {
    std::vector<ResolvedVar> vars;
    auto set = [&vars](ResolvedVar var) {
        const auto it = std::find_if(vars.begin(), vars.end(),
                                     [&](const ResolvedVar& old) { return old.name == var.name; });
        if (it != vars.end()) {
            *it = std::move(var);
        } else {
            vars.push_back(std::move(var));
        }
    };
    const std::string& workload_namespace = workload.id.namespace_;
    for (std::size_t i = 0; i < container.env_from.size(); ++i) {
        const EnvFromSource& source = container.env_from[i];
        const std::string field = container.field + ".envFrom[" + std::to_string(i) + "]";
        if (!source.secret.empty()) {
            continue;  // names unknown offline
        }
        const ConfigMap* config_map =
            cluster.find_config_map(workload_namespace, source.config_map);
        if (config_map == nullptr) {
            if (source.optional) {
                continue;
            }
            return fail(ErrorCode::not_found,
                        workload.id.at(field) + ": no ConfigMap " + workload_namespace + "/" +
                            source.config_map + " in " + cluster.file,
                        field);
        }
        for (const auto& [key, value] : config_map->data) {
            set({source.prefix + key, value, config_map->id.at("data." + key)});
        }
    }
    for (std::size_t i = 0; i < container.env.size(); ++i) {
        const EnvVar& var = container.env[i];
        const std::string field = container.field + ".env[" + std::to_string(i) + "]";
        ResolvedVar resolved{var.name, var.value, workload.id.at(field)};
        if (!var.config_map.empty()) {
            const ConfigMap* config_map =
                cluster.find_config_map(workload_namespace, var.config_map);
            const auto it = config_map == nullptr
                                ? std::map<std::string, std::string>::const_iterator{}
                                : config_map->data.find(var.config_map_key);
            if (config_map == nullptr || it == config_map->data.end()) {
                return fail(ErrorCode::not_found,
                            workload.id.at(field) + ": no key " + var.config_map_key +
                                " in ConfigMap " + workload_namespace + "/" + var.config_map,
                            field);
            }
            resolved.value = it->second;
        }
        set(std::move(resolved));
    }
    return vars;
}

}  // namespace calcmesh::kube
