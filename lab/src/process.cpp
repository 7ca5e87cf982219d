#include "process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace calcmesh::lab {

namespace {

std::string describe(const std::vector<std::string>& argv) {
    std::string text;
    for (const auto& arg : argv) {
        text += (text.empty() ? "" : " ") + arg;
    }
    return text;
}

ChildProcess::Options child_options(const std::vector<std::string>& argv,
                                    const LaunchOptions& options) {
    ChildProcess::Options child;
    child.argv = argv;
    for (const auto& entry : options.env) {
        const auto equals = entry.find('=');
        child.env.emplace_back(entry.substr(0, equals),
                               equals == std::string::npos ? "" : entry.substr(equals + 1));
    }
    child.netns = options.netns;
    child.hosts_file = options.hosts_file;
    child.cpu = options.cpu;
    return child;
}

// Starts the child; a failure names the command.
ChildProcess start(const std::vector<std::string>& argv, const ChildProcess::Options& settings) {
    try {
        return ChildProcess(settings);
    } catch (const std::system_error& error) {
        throw std::runtime_error(
            fmt::format("cannot start `{}`: {}", describe(argv), error.what()));
    }
}

int exit_code(int wait_status) {
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

}  // namespace

CommandResult run(const std::vector<std::string>& argv, const LaunchOptions& options,
                  const std::string& input) {
    try {
        return run_captured(child_options(argv, options), input);
    } catch (const std::system_error& error) {
        throw std::runtime_error(
            fmt::format("cannot start `{}`: {}", describe(argv), error.what()));
    }
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
    auto child_settings = child_options(argv, options);
    // In the terminal's foreground process group, so that it may read the terminal.
    child_settings.own_process_group = false;
    auto child = start(argv, child_settings);
    if (!child.start_failure().empty()) {
        std::cerr << child.start_failure() << '\n';
    }
    // The command owns the terminal's signals while it runs; the lab tool just waits.
    signal(SIGINT, SIG_IGN);
    std::optional<int> status;
    while (!(status = child.wait_for(std::chrono::hours(1)))) {
    }
    signal(SIGINT, SIG_DFL);
    return exit_code(*status);
}

pid_t spawn(const std::vector<std::string>& argv, const LaunchOptions& options) {
    auto child_settings = child_options(argv, options);
    child_settings.detached = true;
    child_settings.output_file = options.log_file.empty() ? "/dev/null" : options.log_file;
    auto child = start(argv, child_settings);
    if (!child.start_failure().empty()) {
        child.wait_for(std::chrono::seconds(10));
        throw std::runtime_error(
            fmt::format("cannot start `{}`: {}", describe(argv), child.start_failure()));
    }
    return child.release();
}

std::uint64_t process_start_time(pid_t pid) {
    std::ifstream stat_file(fmt::format("/proc/{}/stat", pid));
    std::string stat;
    if (!std::getline(stat_file, stat)) {
        return 0;
    }
    // Field 22, counted after the command name, which may itself contain spaces.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    fields >> field;
    if (field == "Z" || field == "X") {
        return 0;  // exited, not yet reaped
    }
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
    if (gone()) {
        return true;
    }
    kill(pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        if (gone()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid, SIGKILL);
    for (int i = 0; i < 100; ++i) {
        if (gone()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

std::uint64_t netns_inode(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace calcmesh::lab
