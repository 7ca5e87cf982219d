#include "process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace calcmesh::lab {

namespace {

std::string describe(const std::vector<std::string>& argv) {
    std::string text;
    for (const auto& arg : argv)
        text += (text.empty() ? "" : " ") + arg;
    return text;
}

[[noreturn]] void child_fail(int fd, const char* what) {
    // Tells the parent why the child could not start; errno travels as text.
    const char* reason = strerror(errno);
    (void)!write(fd, what, strlen(what));
    (void)!write(fd, ": ", 2);
    (void)!write(fd, reason, strlen(reason));
    _exit(127);
}

// Everything prepared before fork, so the child only makes system calls.
struct Prepared {
    std::vector<char*> argv;
    int netns_fd = -1;
    ~Prepared() {
        if (netns_fd >= 0)
            close(netns_fd);
    }
};

void prepare(Prepared& prepared, const std::vector<std::string>& argv,
             const LaunchOptions& options) {
    if (argv.empty())
        throw std::invalid_argument("no command given");
    for (const auto& arg : argv)
        prepared.argv.push_back(const_cast<char*>(arg.c_str()));
    prepared.argv.push_back(nullptr);
    if (!options.netns.empty()) {
        const auto path = "/run/netns/" + options.netns;
        prepared.netns_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (prepared.netns_fd < 0) {
            throw std::runtime_error(
                fmt::format("network namespace {}: {}", options.netns, strerror(errno)));
        }
    }
}

// Runs in the forked child: joins the namespaces, then execs. Reports failures on `error_fd`.
[[noreturn]] void exec_child(const Prepared& prepared, const LaunchOptions& options, int error_fd) {
    if (prepared.netns_fd >= 0 && setns(prepared.netns_fd, CLONE_NEWNET) != 0) {
        child_fail(error_fd, "setns");
    }
    if (!options.hosts_file.empty()) {
        // A private mount namespace, as `ip netns exec` does for /etc/netns/<ns>/hosts, but
        // without remounting /sys, so bpffs stays visible.
        if (unshare(CLONE_NEWNS) != 0)
            child_fail(error_fd, "unshare(CLONE_NEWNS)");
        if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            child_fail(error_fd, "mount --make-rprivate /");
        }
        if (mount(options.hosts_file.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
            child_fail(error_fd, "bind mount of the hosts file");
        }
    }
    if (options.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(options.cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0)
            child_fail(error_fd, "sched_setaffinity");
    }
    for (const auto& entry : options.env)
        putenv(const_cast<char*>(entry.c_str()));
    execvp(prepared.argv[0], prepared.argv.data());
    child_fail(error_fd, prepared.argv[0]);
}

// Reads everything from both pipes until both are closed.
void drain(int out_fd, int err_fd, std::string& out, std::string& err) {
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    std::string* sinks[2] = {&out, &err};
    int open_count = 2;
    char buffer[8192];
    while (open_count > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            throw std::runtime_error(fmt::format("poll: {}", strerror(errno)));
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            const auto n = read(fds[i].fd, buffer, sizeof(buffer));
            if (n > 0) {
                sinks[i]->append(buffer, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_count;
            }
        }
    }
}

int wait_exit_code(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            throw std::runtime_error(fmt::format("waitpid: {}", strerror(errno)));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

CommandResult run(const std::vector<std::string>& argv, const LaunchOptions& options,
                  const std::string& input) {
    Prepared prepared;
    prepare(prepared, argv, options);
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) {
        throw std::runtime_error(fmt::format("pipe: {}", strerror(errno)));
    }
    const pid_t pid = fork();
    if (pid < 0)
        throw std::runtime_error(fmt::format("fork: {}", strerror(errno)));
    if (pid == 0) {
        dup2(in_pipe[0], STDIN_FILENO);
        dup2(out_pipe[1], STDOUT_FILENO);
        dup2(err_pipe[1], STDERR_FILENO);
        exec_child(prepared, options, STDERR_FILENO);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    // Small inputs (ip -batch scripts) fit the pipe buffer; a writer thread covers the rest.
    std::thread writer([fd = in_pipe[1], &input] {
        std::size_t done = 0;
        while (done < input.size()) {
            const auto n = write(fd, input.data() + done, input.size() - done);
            if (n <= 0 && errno != EINTR)
                break;
            if (n > 0)
                done += static_cast<std::size_t>(n);
        }
        close(fd);
    });
    CommandResult result;
    drain(out_pipe[0], err_pipe[0], result.output, result.errors);
    writer.join();
    result.exit_code = wait_exit_code(pid);
    return result;
}

std::string run_checked(const std::vector<std::string>& argv, const LaunchOptions& options,
                        const std::string& input) {
    auto result = run(argv, options, input);
    if (result.exit_code != 0) {
        throw std::runtime_error(fmt::format("`{}`{} failed (exit {}): {}", describe(argv),
                                             options.netns.empty() ? "" : " in " + options.netns,
                                             result.exit_code, result.errors));
    }
    return std::move(result.output);
}

int run_attached(const std::vector<std::string>& argv, const LaunchOptions& options) {
    Prepared prepared;
    prepare(prepared, argv, options);
    const pid_t pid = fork();
    if (pid < 0)
        throw std::runtime_error(fmt::format("fork: {}", strerror(errno)));
    if (pid == 0)
        exec_child(prepared, options, STDERR_FILENO);
    // The command owns the terminal's signals while it runs; the lab tool just waits.
    signal(SIGINT, SIG_IGN);
    const int code = wait_exit_code(pid);
    signal(SIGINT, SIG_DFL);
    return code;
}

pid_t spawn(const std::vector<std::string>& argv, const LaunchOptions& options) {
    Prepared prepared;
    prepare(prepared, argv, options);
    const int log_fd = open(options.log_file.empty() ? "/dev/null" : options.log_file.c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        throw std::runtime_error(fmt::format("log file {}: {}", options.log_file, strerror(errno)));
    }
    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) != 0) {
        close(log_fd);
        throw std::runtime_error(fmt::format("pipe: {}", strerror(errno)));
    }
    const pid_t pid = fork();
    if (pid < 0)
        throw std::runtime_error(fmt::format("fork: {}", strerror(errno)));
    if (pid == 0) {
        setsid();
        const int null_fd = open("/dev/null", O_RDONLY);
        dup2(null_fd, STDIN_FILENO);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        exec_child(prepared, options, status_pipe[1]);
    }
    close(log_fd);
    close(status_pipe[1]);
    // The pipe closes on a successful exec (O_CLOEXEC); otherwise it carries the reason.
    std::string failure;
    char buffer[512];
    ssize_t n;
    while ((n = read(status_pipe[0], buffer, sizeof(buffer))) > 0)
        failure.append(buffer, n);
    close(status_pipe[0]);
    if (!failure.empty()) {
        wait_exit_code(pid);
        throw std::runtime_error(fmt::format("cannot start `{}`: {}", describe(argv), failure));
    }
    return pid;
}

std::uint64_t process_start_time(pid_t pid) {
    std::ifstream stat_file(fmt::format("/proc/{}/stat", pid));
    std::string stat;
    if (!std::getline(stat_file, stat))
        return 0;
    // Field 22, counted after the command name, which may itself contain spaces.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    fields >> field;
    if (field == "Z" || field == "X")
        return 0;  // exited, not yet reaped
    for (int i = 4; i <= 22 && fields >> field; ++i) {
    }
    return std::stoull(field);
}

bool terminate(pid_t pid, std::uint64_t start_time, int grace_ms) {
    // Reap it if it is our child; a zombie still has a start time.
    const auto gone = [&] {
        waitpid(pid, nullptr, WNOHANG);
        return process_start_time(pid) != start_time;
    };
    if (gone())
        return true;
    kill(pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        if (gone())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid, SIGKILL);
    for (int i = 0; i < 100; ++i) {
        if (gone())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

std::uint64_t netns_inode(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

void enter_netns(const std::string& netns) {
    const auto path = "/run/netns/" + netns;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw std::runtime_error(fmt::format("network namespace {}: {}", netns, strerror(errno)));
    const int rc = setns(fd, CLONE_NEWNET);
    const int error = errno;
    close(fd);
    if (rc != 0)
        throw std::runtime_error(fmt::format("setns {}: {}", netns, strerror(error)));
}

}  // namespace calcmesh::lab
