#pragma once

#include <sys/types.h>

#include <chrono>
#include <future>
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
        /// With `pipe_output`: stderr goes to a pipe of its own, readable at `error_fd()`.
        bool pipe_errors = false;
        /// stdin from a pipe writable at `input_fd()`.
        bool pipe_input = false;
        /// A network namespace to join (/run/netns/<name>); empty: this one.
        std::string netns;
        /// A file bind-mounted over /etc/hosts in a private mount namespace; empty: none.
        std::string hosts_file;
        /// The CPU to pin the process to; -1: any.
        int cpu = -1;
        /// A process that outlives this program: a session of its own, stdin from /dev/null
        /// and no SIGTERM when this program ends (take it over with `release`).
        bool detached = false;
    };

    /// Starts the process; an executable named without a slash is looked up in PATH. Throws
    /// std::system_error if it cannot be forked. If the child fails before its program runs
    /// (namespace, mount, exec), it exits with status 127 and `start_failure` says why.
    explicit ChildProcess(const Options& options);
    ~ChildProcess();  ///< kills and reaps the process if it still runs
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&&) = delete;
    ChildProcess(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    /// The read end of the output pipe, or -1.
    int output_fd() const { return output_fd_; }
    /// The read end of the stderr pipe (`pipe_errors`), or -1.
    int error_fd() const { return error_fd_; }
    /// The write end of the stdin pipe (`pipe_input`), or -1; `close_input` closes it.
    int input_fd() const { return input_fd_; }
    void close_input();
    /// Why the child could not run its program ("setns: Operation not permitted"); empty if it
    /// did.
    const std::string& start_failure() const { return start_failure_; }
    /// Gives the process up: it is neither signalled nor reaped by this object any more.
    pid_t release();

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
    int error_fd_ = -1;
    int input_fd_ = -1;
    std::string start_failure_;
    std::optional<int> status_;
};

/// "exited with status 1", "killed by signal 9".
std::string describe_wait_status(int status);

/// A command run to completion: how it ended and what it wrote.
struct CommandResult {
    int exit_code = 0;  ///< its exit status, or 128 + the signal that ended it, as a shell says
    std::string output;
    std::string errors;  ///< its stderr, or why it could not start
};

/// Runs `options.argv` to completion with `input` on its stdin and its stdout and stderr
/// captured apart (the options' own output settings are replaced). Throws std::system_error if
/// it cannot be started.
CommandResult run_captured(ChildProcess::Options options, const std::string& input = {});

/// Joins the calling thread to a named network namespace. Throws std::runtime_error.
void enter_netns(const std::string& netns);

/// Runs `fn` on a thread that has joined the named network namespace and returns its result;
/// exceptions propagate. The caller's own namespace is never changed.
template <class Fn>
auto in_netns(const std::string& netns, Fn fn) -> decltype(fn()) {
    return std::async(std::launch::async,
                      [&netns, &fn] {
                          enter_netns(netns);
                          return fn();
                      })
        .get();
}

}  // namespace calcmesh
