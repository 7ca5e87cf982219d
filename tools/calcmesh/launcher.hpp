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

/// What the launcher does when a child ends on its own once the system is up.
struct RestartPolicy {
    /// false: one child's end stops the whole system.
    bool restart = true;
    /// Before the first restart of a crash loop; each further one doubles it, up to `max_delay`,
    /// as Kubernetes backs off a crashing container.
    std::chrono::milliseconds first_delay{1'000};
    std::chrono::milliseconds max_delay{30'000};
    /// A child that has served this long since it was last restarted is in a crash loop no
    /// more: its next restart waits `first_delay` again.
    std::chrono::milliseconds reset_after{60'000};
};

/// Runs a system of child processes: starts them in order, each once the previous is ready,
/// streams their output with a name prefix, restarts a child that ends (or stops them all, as
/// `RestartPolicy` says), and stops them all in reverse order when asked.
class Launcher {
  public:
    /// `status_file`, if not empty, is rewritten with every child's state on every change.
    Launcher(std::chrono::milliseconds ready_timeout, RestartPolicy restart,
             std::string status_file = {});
    ~Launcher();  ///< stops whatever still runs

    enum class Started { up, failed, interrupted };
    /// Starts every child in order, each once the one before is ready. Stops those started
    /// if one fails to start or become ready (failed, saying which and why), or on SIGINT or
    /// SIGTERM meanwhile (interrupted).
    Started start(std::vector<ChildSpec> specs);
    /// Supervises the children until SIGINT or SIGTERM, returning true, or, without restarts,
    /// until a child ends, returning false.
    bool wait();
    /// Stops the children in reverse start order: SIGTERM, then SIGKILL after `grace`.
    void stop(std::chrono::milliseconds grace = std::chrono::seconds(15));

    /// Prints a line of the launcher's own, prefixed like the children's.
    void say(const std::string& line);

  private:
    struct Child;
    /// Starts the child's process and streams its output. Returns false, saying why, if it
    /// cannot be started.
    bool spawn(Child& child);
    enum class Progress { starting, serving, failed };
    /// One look at a starting child: still starting, serving now (its `after_ready` done), or
    /// failed, with `failure` saying how.
    Progress advance_start(Child& child, std::string& failure);
    /// Waits a short while for SIGINT or SIGTERM; true, having said so, if one came.
    bool stop_asked();
    /// One pass of supervision over every child; false once the system must stop.
    bool supervise();
    void schedule_restart(Child& child, const std::string& why);
    void write_status();
    void pump_output();

    std::chrono::milliseconds ready_timeout_;
    RestartPolicy restart_;
    std::string status_file_;
    std::vector<std::unique_ptr<Child>> children_;
    std::mutex output_mutex_;
    std::size_t prefix_width_ = 8;
    /// Output pipes handed to the output thread, which owns and closes them: a restarted
    /// child's old pipe is read to its end even after its process is replaced.
    std::vector<std::pair<int, std::string>> new_outputs_;
    std::thread output_thread_;
    int wake_pipe_[2] = {-1, -1};
};

}  // namespace calcmesh::tools
