#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "calcmesh/process.hpp"

namespace calcmesh::tools {

/// One process the launcher runs.
struct ChildSpec {
    std::string name;  ///< shown as the prefix of its output lines
    std::vector<std::string> argv;
    std::vector<std::pair<std::string, std::string>> env;
    /// True once the process serves; polled until then.
    std::function<bool()> ready;
    /// Runs once it is ready (e.g. creating Kafka topics); an exception aborts the start.
    std::function<void()> after_ready;
};

/// Runs a system of child processes: starts them in order, each once the previous is ready,
/// streams their output with a name prefix, and stops them all in reverse order when asked
/// or as soon as one of them ends unexpectedly.
class Launcher {
  public:
    explicit Launcher(std::chrono::milliseconds ready_timeout);
    ~Launcher();  ///< stops whatever still runs

    /// Starts every child in order. Returns false (after stopping those started) if one
    /// fails to start or become ready, saying which and why.
    bool start(std::vector<ChildSpec> specs);
    /// Blocks until SIGINT or SIGTERM, or until a child exits; returns true for a signal.
    bool wait();
    /// Stops the children in reverse start order: SIGTERM, then SIGKILL after `grace`.
    void stop(std::chrono::milliseconds grace = std::chrono::seconds(15));

    /// Prints a line of the launcher's own, prefixed like the children's.
    void say(const std::string& line);

  private:
    struct Child;
    void pump_output();
    std::string ended_child();

    std::chrono::milliseconds ready_timeout_;
    std::vector<std::unique_ptr<Child>> children_;
    std::mutex output_mutex_;
    std::size_t prefix_width_ = 8;
    std::thread output_thread_;
    int wake_pipe_[2] = {-1, -1};
};

}  // namespace calcmesh::tools
