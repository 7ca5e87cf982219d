#include "calcmesh/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <thread>

namespace calcmesh {

ChildProcess::ChildProcess(const Options& options) {
    int pipe_fds[2] = {-1, -1};
    if (options.pipe_output && ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "pipe");
    }
    int file_fd = -1;
    if (!options.pipe_output && !options.output_file.empty()) {
        file_fd =
            ::open(options.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (file_fd < 0) {
            throw std::system_error(errno, std::generic_category(), "open " + options.output_file);
        }
    }
    // Everything the child needs is prepared before fork: only async-signal-safe calls after.
    std::vector<char*> argv;
    for (const auto& arg : options.argv) {
        argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** entry = environ; *entry; ++entry) {
        const std::string text = *entry;
        const auto name = text.substr(0, text.find('='));
        bool replaced = false;
        for (const auto& [key, value] : options.env) {
            replaced = replaced || key == name;
        }
        if (!replaced) {
            env_strings.push_back(text);
        }
    }
    for (const auto& [key, value] : options.env) {
        env_strings.push_back(key + "=" + value);
    }
    std::vector<char*> envp;
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
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) {
            ::_exit(127);  // the parent died before prctl took effect
        }
        if (options.own_process_group) {
            ::setpgid(0, 0);
        }
        // The signal mask survives exec: a parent that blocks signals to wait for them must
        // not pass that on.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        const int out = options.pipe_output ? pipe_fds[1] : file_fd;
        if (out >= 0) {
            ::dup2(out, STDOUT_FILENO);
            ::dup2(out, STDERR_FILENO);
        }
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    if (options.pipe_output) {
        ::close(pipe_fds[1]);
        output_fd_ = pipe_fds[0];
    }
    if (file_fd >= 0) {
        ::close(file_fd);
    }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      output_fd_(std::exchange(other.output_fd_, -1)),
      status_(other.status_) {}

ChildProcess::~ChildProcess() {
    if (pid_ > 0 && !poll()) {
        ::kill(pid_, SIGKILL);
        wait_for(std::chrono::seconds(10));
    }
    if (output_fd_ >= 0) {
        ::close(output_fd_);
    }
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

}  // namespace calcmesh
