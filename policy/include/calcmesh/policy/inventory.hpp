#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "calcmesh/error.hpp"
#include "calcmesh/kube/model.hpp"
#include "calcmesh/policy/engine.hpp"

/// The endpoints of calcmesh's deployment: every pod the rendered manifests make, plus the
/// platform pods (kube-dns, a metrics scraper) that every cluster runs outside them.
namespace calcmesh::policy {

/// One endpoint per pod of every workload of every cluster, with its pod-template labels (never
/// the workload's own labels, which no policy sees) and its containers' ports. A Deployment,
/// Job... is one endpoint named after it (all replicas share an identity); a StatefulSet gives
/// one per ordinal, named after the pod (kafka-0), with the labels its controller adds.
Inventory endpoints_of(const kube::Mesh& mesh);

/// Reads the platform endpoints file (`endpoints: [{name, namespace, labels, ports: [{name,
/// port, protocol}]}]`). The endpoints have no cluster yet and are external.
Result<std::vector<Endpoint>> parse_platform(const std::string& file, const std::string& yaml);

/// endpoints_of(mesh), then a copy of each platform endpoint in every cluster of the mesh.
Result<Inventory> load_inventory(const kube::Mesh& mesh, const std::filesystem::path& platform);

}  // namespace calcmesh::policy
