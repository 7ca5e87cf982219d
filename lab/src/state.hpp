#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "calcmesh/lab/lab.hpp"

namespace calcmesh::lab {

/// A process the lab started in one of its pods.
struct LabProcess {
    std::string pod;
    std::string name;
    pid_t pid = 0;
    std::uint64_t start_time = 0;  ///< tells the process from a later one reusing its pid
};

/// A fault the lab has put in (`calcmesh lab fault`), recorded before it is made so that
/// `heal` and `down` can undo it.
struct LabFault {
    std::string id;      ///< "f1", "f2", ... never reused within a lab
    std::string kind;    ///< partition, delay or kill
    std::string target;  ///< a cluster (partition, delay) or a service (kill)
    int delay_ms = 0;    ///< delay only
    std::int64_t since_unix_ms = 0;
    std::int64_t heals_at_unix_ms = 0;  ///< 0: until `calcmesh lab fault heal`
};

/// What a lab has made, written before each thing is made, so that `calcmesh lab down` can
/// remove everything even after a crash half-way through `up`.
struct LabState {
    std::string name;
    std::string datapath;                 ///< the datapath in force, empty while building
    std::vector<std::string> namespaces;  ///< every namespace that may exist
    std::string pin_dir;                  ///< BPF pins under /sys/fs/bpf
    std::vector<LabProcess> processes;
    bool observe = false;  ///< the flow stage runs on every node
    std::vector<LabFault> faults;
    int faults_made = 0;  ///< numbers the next fault's id
};

/// The folder of every lab's run directory (/run/calcmesh-lab).
std::filesystem::path run_root();

/// The lab's BPF pin directory under /sys/fs/bpf.
std::filesystem::path pin_dir(const std::string& name);

/// Reads a lab's state; nullopt if there is no such lab. Throws std::runtime_error if the file
/// is unreadable.
std::optional<LabState> load_state(const std::string& name);

/// Writes the state atomically (temporary file and rename), creating the lab directory.
void save_state(const LabState& state);

/// The names of the labs that have a state file.
std::vector<std::string> list_labs();

}  // namespace calcmesh::lab
