#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace calcmesh {

/// A child process this program started. It is only ever signalled by its own pid, and it
/// gets SIGTERM if this program dies first, so no child outlives its parent.
class ChildProcess {
  public:
    struct Options {
        std::vector<std::string> argv;                         ///< argv[0] is the executable path
        std::vector<std::pair<std::string, std::string>> env;  ///< added to this environment
        /// Where stdout and stderr go: a pipe readable at `output_fd()` if true, otherwise
        /// `output_file` if set, otherwise this process's own.
        bool pipe_output = false;
        std::string output_file;
        /// A process group of its own, so a terminal's Ctrl-C reaches only the parent, which
        /// then stops its children in order.
        bool own_process_group = true;
    };

    /// Starts the process. Throws std::system_error if it cannot be started.
    explicit ChildProcess(const Options& options);
    ~ChildProcess();  ///< kills and reaps the process if it still runs
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&&) = delete;
    ChildProcess(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    /// The read end of the output pipe, or -1.
    int output_fd() const { return output_fd_; }

    /// The wait status once the process has exited (checks without blocking).
    std::optional<int> poll();
    /// Waits up to `timeout` for the process to exit.
    std::optional<int> wait_for(std::chrono::milliseconds timeout);
    /// Sends `signal` if the process still runs.
    void signal(int signal);
    /// SIGTERM, then SIGKILL after `grace`; returns the wait status.
    int stop(std::chrono::milliseconds grace);

  private:
    pid_t pid_ = -1;
    int output_fd_ = -1;
    std::optional<int> status_;
};

/// "exited with status 1", "killed by signal 9".
std::string describe_wait_status(int status);

}  // namespace calcmesh
