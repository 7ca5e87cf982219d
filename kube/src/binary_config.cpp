#include "calcmesh/kube/binary_config.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

namespace calcmesh::kube {

namespace {

constexpr auto kTimeout = std::chrono::seconds(10);

// Not calcmesh::ChildProcess: that one adds to this process's environment, and a CALCMESH_*
// variable of the caller's shell would then change what the binary reports.

/// Closes a file descriptor when it goes out of scope.
class Descriptor {
  public:
    explicit Descriptor(int fd = -1) : fd_(fd) {}
    Descriptor(const Descriptor&) = delete;
    Descriptor& operator=(const Descriptor&) = delete;
    ~Descriptor() { reset(); }
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = -1;
    }

  private:
    int fd_;
};

}  // namespace

Result<std::map<std::string, std::string>> print_config(
    const std::filesystem::path& binary, const std::vector<std::string>& args,
    const std::map<std::string, std::string>& environment) {
    const std::string name = binary.filename().string();
    if (::access(binary.c_str(), X_OK) != 0) {
        return fail(ErrorCode::not_found,
                    binary.string() + ": no such executable (build it first)");
    }
    std::vector<std::string> argv_text{binary.string()};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    argv_text.emplace_back("--print-config");
    std::vector<std::string> env_text;
    env_text.reserve(environment.size());
    for (const auto& [key, value] : environment) {
        env_text.push_back(key + "=" + value);
    }
    auto pointers = [](std::vector<std::string>& texts) {
        std::vector<char*> result;
        result.reserve(texts.size() + 1);
        for (auto& text : texts) {
            result.push_back(text.data());
        }
        result.push_back(nullptr);
        return result;
    };
    auto argv = pointers(argv_text);
    auto envp = pointers(env_text);

    std::array<int, 2> out_pipe{};
    std::array<int, 2> err_pipe{};
    if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0 || ::pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
        return fail(ErrorCode::internal, "pipe: " + std::string(std::strerror(errno)));
    }
    Descriptor out_read(out_pipe[0]), out_write(out_pipe[1]);
    Descriptor err_read(err_pipe[0]), err_write(err_pipe[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    out_write.reset();
    err_write.reset();
    if (spawned != 0) {
        return fail(ErrorCode::internal, name + ": cannot start: " + std::strerror(spawned));
    }

    std::string out;
    std::string err;
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    std::array<pollfd, 2> fds{pollfd{out_read.get(), POLLIN, 0}, pollfd{err_read.get(), POLLIN, 0}};
    bool timed_out = false;
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            ::kill(pid, SIGKILL);
            break;
        }
        if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) {
            break;
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            std::array<char, 4096> buffer{};
            const auto count = ::read(fds[i].fd, buffer.data(), buffer.size());
            if (count <= 0) {
                fds[i].fd = -1;
            } else {
                (i == 0 ? out : err).append(buffer.data(), static_cast<std::size_t>(count));
            }
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (timed_out) {
        return fail(ErrorCode::upstream_timeout, name + " --print-config did not finish in 10 s");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return fail(ErrorCode::invalid_field, name + " --print-config failed (status " +
                                                  std::to_string(status) +
                                                  "): " + (err.empty() ? out : err));
    }

    std::map<std::string, std::string> keys;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        const auto equals = line.find('=');
        if (equals == std::string::npos || equals == 0) {
            return fail(ErrorCode::upstream_bad_response,
                        name + " --print-config printed a line that is not KEY=value: " + line);
        }
        keys[line.substr(0, equals)] = line.substr(equals + 1);
    }
    if (keys.empty()) {
        return fail(ErrorCode::upstream_bad_response, name + " --print-config printed no keys");
    }
    return keys;
}

}  // namespace calcmesh::kube
