#include "calcmesh/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>

namespace calcmesh {

namespace {

// A file descriptor closed when it goes out of scope, so that no failure path leaks one.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        reset(std::exchange(other.fd_, -1));
        return *this;
    }
    ~Fd() { reset(); }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

struct Pipe {
    Fd read;
    Fd write;
};

Pipe make_pipe() {
    int fds[2] = {-1, -1};
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "pipe");
    }
    return {Fd(fds[0]), Fd(fds[1])};
}

Fd open_file(const std::string& path, int flags, const std::string& what) {
    Fd fd(::open(path.c_str(), flags | O_CLOEXEC, 0644));
    if (fd.get() < 0) {
        throw std::system_error(errno, std::generic_category(), what + " " + path);
    }
    return fd;
}

// execve wants a path: a name without a slash is looked up in PATH, as a shell does.
std::string executable_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    if (name.find('/') != std::string::npos || path == nullptr) {
        return name;
    }
    std::string_view directories = path;
    while (!directories.empty()) {
        const auto end = std::min(directories.find(':'), directories.size());
        const std::string candidate =
            std::string(end == 0 ? "." : directories.substr(0, end)) + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
        directories.remove_prefix(std::min(end + 1, directories.size()));
    }
    return name;
}

std::vector<std::string> merged_environment(
    const std::vector<std::pair<std::string, std::string>>& added) {
    std::vector<std::string> entries;
    for (char** entry = environ; *entry; ++entry) {
        const std::string text = *entry;
        const auto name = text.substr(0, text.find('='));
        bool replaced = false;
        for (const auto& [key, value] : added) {
            replaced = replaced || key == name;
        }
        if (!replaced) {
            entries.push_back(text);
        }
    }
    for (const auto& [key, value] : added) {
        entries.push_back(key + "=" + value);
    }
    return entries;
}

// Runs in the forked child: async-signal-safe calls only. Tells the parent on `status_fd` why
// it could not exec ("setns: Operation not permitted"), then exits 127.
[[noreturn]] void fail_in_child(int status_fd, const char* what) {
    const char* reason = ::strerror(errno);
    (void)!::write(status_fd, what, std::strlen(what));
    (void)!::write(status_fd, ": ", 2);
    (void)!::write(status_fd, reason, std::strlen(reason));
    ::_exit(127);
}

}  // namespace

ChildProcess::ChildProcess(const Options& options) {
    if (options.argv.empty()) {
        throw std::system_error(EINVAL, std::generic_category(), "no command given");
    }
    // Everything the child needs is prepared before fork: only async-signal-safe calls after.
    Pipe output;
    Pipe errors;
    Pipe input;
    Fd file;
    Fd null_input;
    Fd netns;
    if (options.pipe_output) {
        output = make_pipe();
        if (options.pipe_errors) {
            errors = make_pipe();
        }
    } else if (!options.output_file.empty()) {
        file = open_file(options.output_file, O_WRONLY | O_CREAT | O_APPEND, "open");
    }
    if (options.pipe_input) {
        input = make_pipe();
    } else if (options.detached) {
        null_input = open_file("/dev/null", O_RDONLY, "open");
    }
    if (!options.netns.empty()) {
        netns = open_file("/run/netns/" + options.netns, O_RDONLY, "network namespace");
    }
    Pipe status = make_pipe();
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    if (options.cpu >= 0) {
        CPU_SET(options.cpu, &cpus);
    }
    const std::string program = executable_path(options.argv[0]);
    std::vector<char*> argv;
    argv.reserve(options.argv.size() + 1);
    for (const auto& arg : options.argv) {
        argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    auto env_strings = merged_environment(options.env);
    std::vector<char*> envp;
    envp.reserve(env_strings.size() + 1);
    for (auto& entry : env_strings) {
        envp.push_back(entry.data());
    }
    envp.push_back(nullptr);
    const pid_t parent = ::getpid();

    pid_ = ::fork();
    if (pid_ < 0) {
        throw std::system_error(errno, std::generic_category(), "fork");
    }
    if (pid_ == 0) {
        const int status_fd = status.write.get();
        if (options.detached) {
            ::setsid();
        } else {
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (::getppid() != parent) {
                ::_exit(127);  // the parent died before prctl took effect
            }
            if (options.own_process_group) {
                ::setpgid(0, 0);
            }
        }
        // The signal mask survives exec: a parent that blocks signals to wait for them must
        // not pass that on.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        const int in = options.pipe_input ? input.read.get() : null_input.get();
        if (in >= 0) {
            ::dup2(in, STDIN_FILENO);
        }
        const int out = options.pipe_output ? output.write.get() : file.get();
        if (out >= 0) {
            ::dup2(out, STDOUT_FILENO);
            ::dup2(errors.write.get() >= 0 ? errors.write.get() : out, STDERR_FILENO);
        }
        if (netns.get() >= 0 && ::setns(netns.get(), CLONE_NEWNET) != 0) {
            fail_in_child(status_fd, "setns");
        }
        if (!options.hosts_file.empty()) {
            // A private mount namespace, as `ip netns exec` makes for /etc/netns/<ns>/hosts,
            // but without remounting /sys, so that bpffs stays visible.
            if (::unshare(CLONE_NEWNS) != 0) {
                fail_in_child(status_fd, "unshare(CLONE_NEWNS)");
            }
            if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
                fail_in_child(status_fd, "mount --make-rprivate /");
            }
            if (::mount(options.hosts_file.c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
                fail_in_child(status_fd, "bind mount of the hosts file");
            }
        }
        if (options.cpu >= 0 && ::sched_setaffinity(0, sizeof(cpus), &cpus) != 0) {
            fail_in_child(status_fd, "sched_setaffinity");
        }
        ::execve(program.c_str(), argv.data(), envp.data());
        fail_in_child(status_fd, argv[0]);
    }
    output_fd_ = output.read.release();
    error_fd_ = errors.read.release();
    input_fd_ = input.write.release();
    // The status pipe closes on a successful exec (O_CLOEXEC); otherwise it carries the reason.
    status.write.reset();
    char buffer[512];
    ssize_t n = 0;
    while ((n = ::read(status.read.get(), buffer, sizeof(buffer))) != 0) {
        if (n > 0) {
            start_failure_.append(buffer, static_cast<std::size_t>(n));
        } else if (errno != EINTR) {
            break;
        }
    }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      output_fd_(std::exchange(other.output_fd_, -1)),
      error_fd_(std::exchange(other.error_fd_, -1)),
      input_fd_(std::exchange(other.input_fd_, -1)),
      start_failure_(std::move(other.start_failure_)),
      status_(other.status_) {}

ChildProcess::~ChildProcess() {
    if (pid_ > 0 && !poll()) {
        ::kill(pid_, SIGKILL);
        wait_for(std::chrono::seconds(10));
    }
    for (const int fd : {output_fd_, error_fd_, input_fd_}) {
        if (fd >= 0) {
            ::close(fd);
        }
    }
}

void ChildProcess::close_input() {
    if (input_fd_ >= 0) {
        ::close(std::exchange(input_fd_, -1));
    }
}

pid_t ChildProcess::release() {
    return std::exchange(pid_, -1);
}

std::optional<int> ChildProcess::poll() {
    if (!status_ && pid_ > 0) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            status_ = status;
        }
    }
    return status_;
}

std::optional<int> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!poll() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return status_;
}

void ChildProcess::signal(int signal) {
    if (pid_ > 0 && !poll()) {
        ::kill(pid_, signal);
    }
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
    signal(SIGTERM);
    if (auto status = wait_for(grace)) {
        return *status;
    }
    signal(SIGKILL);
    return wait_for(std::chrono::seconds(10)).value_or(-1);
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
               ::strsignal(WTERMSIG(status)) + ")";
    }
    return "ended with wait status " + std::to_string(status);
}

namespace {

// Reads both pipes until both are closed, so that neither fills up while the other is read.
void drain(int out_fd, int err_fd, std::string& out, std::string& err) {
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    std::string* sinks[2] = {&out, &err};
    int open_count = 2;
    char buffer[8192];
    while (open_count > 0) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::system_error(errno, std::generic_category(), "poll");
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            const auto n = ::read(fds[i].fd, buffer, sizeof(buffer));
            if (n > 0) {
                sinks[i]->append(buffer, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                fds[i].fd = -1;
                --open_count;
            }
        }
    }
}

}  // namespace

void enter_netns(const std::string& netns) {
    Fd fd(::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        throw std::runtime_error("network namespace " + netns + ": " + std::strerror(errno));
    }
    if (::setns(fd.get(), CLONE_NEWNET) != 0) {
        throw std::runtime_error("setns " + netns + ": " + std::strerror(errno));
    }
}

CommandResult run_captured(ChildProcess::Options options, const std::string& input) {
    options.pipe_output = true;
    options.pipe_errors = true;
    options.pipe_input = true;
    options.output_file.clear();
    ChildProcess child(options);
    // Small inputs (ip -batch scripts) fit the pipe buffer; a writer thread covers the rest.
    std::thread writer([&child, &input] {
        std::size_t done = 0;
        while (done < input.size()) {
            const auto n = ::write(child.input_fd(), input.data() + done, input.size() - done);
            if (n <= 0 && errno != EINTR) {
                break;
            }
            if (n > 0) {
                done += static_cast<std::size_t>(n);
            }
        }
        child.close_input();
    });
    CommandResult result;
    try {
        drain(child.output_fd(), child.error_fd(), result.output, result.errors);
    } catch (...) {
        writer.join();
        throw;
    }
    writer.join();
    int status = -1;
    while (::waitpid(child.pid(), &status, 0) < 0 && errno == EINTR) {
    }
    child.release();
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.errors += child.start_failure();
    return result;
}

}  // namespace calcmesh
