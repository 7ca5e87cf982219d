#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calcmesh/error.hpp"

/// The Kubernetes objects of rendered manifests (`kustomize build` output), as far as calcmesh's
/// offline checks need them: workloads with their pod templates, Services, ConfigMaps, claims.
/// Every object also stays available as raw YAML (`Object::node`), so that checks of other kinds
/// (CiliumNetworkPolicy, ...) can read what the model does not interpret.
namespace calcmesh::kube {

using Labels = std::map<std::string, std::string>;

/// Names one object in messages: "c1-client.yaml: Service calcmesh/log-collector".
struct ObjectId {
    std::string file;  ///< the file name, without its directory
    std::string kind;
    std::string namespace_;  ///< empty for cluster-scoped objects
    std::string name;

    std::string to_string() const;
    /// The object and one of its fields: "c1-client.yaml: Service calcmesh/x: spec.selector".
    std::string at(std::string_view field) const;
};

/// One matchExpressions entry of a label selector.
struct SelectorRequirement {
    std::string key;
    std::string op;  ///< In, NotIn, Exists or DoesNotExist
    std::vector<std::string> values;
};

/// A Kubernetes label selector. An empty selector selects everything, as in Kubernetes.
struct LabelSelector {
    Labels match_labels;
    std::vector<SelectorRequirement> match_expressions;

    bool matches(const Labels& labels) const;
    bool empty() const { return match_labels.empty() && match_expressions.empty(); }
};

struct ContainerPort {
    std::string name;  ///< empty if unnamed
    int port = 0;
    std::string protocol = "TCP";
};

/// One `env` entry. Exactly one of `value`, `field_path` and `config_map` is set; an entry taken
/// from a Secret or a resource field has none of them and `runtime_only` set.
struct EnvVar {
    std::string name;
    std::optional<std::string> value;
    std::string field_path;  ///< valueFrom.fieldRef.fieldPath
    std::string config_map;  ///< valueFrom.configMapKeyRef.name
    std::string config_map_key;
    bool runtime_only = false;
};

/// One `envFrom` entry; only ConfigMaps are read, Secrets are recorded by name.
struct EnvFromSource {
    std::string config_map;
    std::string secret;
    std::string prefix;
    bool optional = false;
};

/// An httpGet or tcpSocket probe. `port` is a number or a port name, as written.
struct Probe {
    std::string path;  ///< empty for tcpSocket
    std::string port;
};

struct VolumeMount {
    std::string name;
    std::string mount_path;
};

struct Container {
    std::string name;
    std::string image;
    std::vector<std::string> command;
    std::vector<std::string> args;
    std::vector<ContainerPort> ports;
    std::vector<EnvVar> env;
    std::vector<EnvFromSource> env_from;
    std::optional<Probe> readiness;
    std::optional<Probe> liveness;
    std::vector<VolumeMount> mounts;
    std::string field;  ///< where it is, e.g. "spec.template.spec.containers[0]"

    /// The port number a Service targetPort or probe port (number or name) means here.
    std::optional<int> resolve_port(const std::string& number_or_name) const;
};

struct Volume {
    std::string name;
    std::string claim_name;  ///< persistentVolumeClaim.claimName
    std::string config_map;  ///< configMap.name
    bool empty_dir = false;
};

/// A pod as the manifests describe it, before it exists: its name (a pattern for pods whose
/// names the controller generates) and every label it will carry.
struct PodView {
    std::string name;
    Labels labels;
};

/// A Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob. Object labels (`labels`)
/// and pod-template labels (`pod_labels`) are kept apart: Services and policies select pods by
/// the latter only.
struct Workload {
    ObjectId id;
    Labels labels;
    Labels annotations;
    std::optional<LabelSelector> selector;  ///< spec.selector; none for Jobs and CronJobs
    Labels pod_labels;
    Labels pod_annotations;
    std::vector<Container> init_containers;
    std::vector<Container> containers;
    std::vector<Volume> volumes;
    std::vector<std::string> claim_templates;  ///< StatefulSet volumeClaimTemplates
    int replicas = 1;
    std::string template_field;  ///< "spec.template" or "spec.jobTemplate.spec.template"

    /// The pods it creates: one per ordinal for a StatefulSet (with the labels the controller
    /// adds, e.g. statefulset.kubernetes.io/pod-name), else one that stands for all replicas.
    std::vector<PodView> pods() const;
};

struct ServicePort {
    std::string name;
    int port = 0;
    std::string target_port;  ///< number or name as written; the port number if omitted
    std::string protocol = "TCP";
    int node_port = 0;
};

struct Service {
    ObjectId id;
    Labels labels;
    Labels annotations;
    std::optional<Labels> selector;  ///< none: a Service without a selector
    std::string type = "ClusterIP";
    bool headless = false;
    std::vector<ServicePort> ports;

    /// service.cilium.io/global (or the old io.cilium/global-service) is "true".
    bool global() const;
    /// Whether a global Service shares its local backends (service.cilium.io/shared, default true).
    bool shared() const;
    /// service.cilium.io/affinity, empty if absent.
    std::string affinity() const;
    const ServicePort* find_port(int port) const;
};

struct ConfigMap {
    ObjectId id;
    Labels labels;
    std::map<std::string, std::string> data;
};

struct PersistentVolumeClaim {
    ObjectId id;
};

/// Any object of the manifests, interpreted or not.
struct Object {
    ObjectId id;
    std::string api_version;
    Labels labels;
    Labels annotations;
    YAML::Node node;
};

/// A pod of a workload picked by a selector.
struct SelectedPod {
    const Workload* workload;
    PodView pod;
};

/// The rendered manifests of one cluster.
struct Cluster {
    std::string name;             ///< the file's stem, e.g. "c1-client"
    std::string file;             ///< the file name, e.g. "c1-client.yaml"
    std::vector<Object> objects;  ///< every object, in file order
    std::vector<Workload> workloads;
    std::vector<Service> services;
    std::vector<ConfigMap> config_maps;
    std::vector<PersistentVolumeClaim> claims;

    const Service* find_service(std::string_view object_namespace, std::string_view name) const;
    const ConfigMap* find_config_map(std::string_view object_namespace,
                                     std::string_view name) const;
    const Workload* find_workload(std::string_view object_namespace, std::string_view name) const;
    /// The pods in `object_namespace` whose labels the selector matches.
    std::vector<SelectedPod> select_pods(std::string_view object_namespace,
                                         const LabelSelector& selector) const;
    /// The pods a Service sends traffic to in this cluster (none without a selector).
    std::vector<SelectedPod> backends(const Service& service) const;
};

/// Every cluster of one deployment, in name order.
struct Mesh {
    std::vector<Cluster> clusters;

    const Cluster* find(std::string_view name) const;
};

/// Parses the multi-document YAML of one cluster. `file` names it in messages and its stem
/// becomes the cluster name. Fails on the first object whose fields have the wrong shape,
/// naming the file, the object and the field.
Result<Cluster> parse_cluster(const std::string& file, const std::string& yaml);

/// Reads and parses one rendered file.
Result<Cluster> load_cluster(const std::filesystem::path& path);

/// Reads every *.yaml file of a directory as one cluster each.
Result<Mesh> load_mesh(const std::filesystem::path& directory);

/// An environment variable of a container with its value as the manifests determine it.
struct ResolvedVar {
    std::string name;
    std::optional<std::string> value;  ///< none when only known at run time (fieldRef, Secret)
    std::string source;                ///< where it is set, e.g. "ConfigMap calcmesh/x: data.KEY"
};

/// The environment a container starts with, in Kubernetes' order: envFrom entries in order
/// (later wins), then env (wins over envFrom). Fails if a referenced ConfigMap or key is
/// missing and not optional.
Result<std::vector<ResolvedVar>> resolve_environment(const Cluster& cluster,
                                                     const Workload& workload,
                                                     const Container& container);

}  // namespace calcmesh::kube
