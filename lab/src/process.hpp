#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "calcmesh/process.hpp"

namespace calcmesh::lab {

/// Where and how a process starts: the network namespace it joins (by name, /run/netns/<name>),
/// optionally a hosts file bind-mounted over /etc/hosts in a private mount namespace (so service
/// names resolve as in the clusters), a CPU to pin it to, and extra environment variables.
struct LaunchOptions {
    std::string netns;             ///< empty: stay in the caller's namespace
    std::string hosts_file;        ///< empty: keep /etc/hosts
    int cpu = -1;                  ///< -1: no pinning
    std::vector<std::string> env;  ///< NAME=value entries added to the environment
    std::string log_file;          ///< detached processes write stdout and stderr here
};

using calcmesh::CommandResult;

/// Runs a command to completion and captures its output; `input` is written to its stdin.
/// Throws std::runtime_error if it cannot be started. Every process the lab starts goes through
/// calcmesh::ChildProcess.
CommandResult run(const std::vector<std::string>& argv, const LaunchOptions& options = {},
                  const std::string& input = {});

/// Like `run`, but throws std::runtime_error with the command and its stderr on a non-zero exit.
std::string run_checked(const std::vector<std::string>& argv, const LaunchOptions& options = {},
                        const std::string& input = {});

/// Runs a command with the caller's stdin, stdout and stderr; returns its exit code
/// (128 + signal if it was killed).
int run_attached(const std::vector<std::string>& argv, const LaunchOptions& options);

/// Starts a long-running process in a session of its own, detached from the caller, with output
/// to `options.log_file`; returns its pid. Throws std::runtime_error if it cannot be started.
pid_t spawn(const std::vector<std::string>& argv, const LaunchOptions& options);

/// The kernel's start time of a process (clock ticks since boot), which tells a process from a
/// later one that reuses its pid; 0 if there is no such process.
std::uint64_t process_start_time(pid_t pid);

/// Sends SIGTERM, waits up to `grace_ms`, then SIGKILL; only if the pid still belongs to the
/// process that started at `start_time`. Returns true if that process is gone.
bool terminate(pid_t pid, std::uint64_t start_time, int grace_ms = 5000);

/// The inode of a network namespace file (/run/netns/<name> or /proc/<pid>/ns/net), 0 if absent.
std::uint64_t netns_inode(const std::string& path);

}  // namespace calcmesh::lab
