#include "launcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

namespace calcmesh::tools {

using Clock = std::chrono::steady_clock;

struct Launcher::Child {
    enum class State {
        starting,  ///< running, not ready yet
        serving,
        waiting,  ///< ended; started again at `until`
        stopped,
    };

    ChildSpec spec;
    std::unique_ptr<ChildProcess> process;
    State state = State::starting;
    /// starting: the deadline to become ready; serving: since when; waiting: when to start.
    Clock::time_point until;
    std::chrono::milliseconds next_delay{0};
    unsigned restarts = 0;
    std::string last_end;  ///< how its last process ended, if one did

    const char* state_name() const {
        switch (state) {
            case State::starting:
                return "starting";
            case State::serving:
                return "serving";
            case State::waiting:
                return "waiting_to_restart";
            case State::stopped:
                break;
        }
        return "stopped";
    }
};

namespace {

/// SIGINT and SIGTERM are taken with sigtimedwait by the launcher's main thread only.
sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

std::string seconds_text(std::chrono::milliseconds duration) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(duration.count()) / 1000);
    return text;
}

}  // namespace

Launcher::Launcher(std::chrono::milliseconds ready_timeout, RestartPolicy restart,
                   std::string status_file)
    : ready_timeout_(ready_timeout), restart_(restart), status_file_(std::move(status_file)) {
    const auto signals = stop_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    if (::pipe(wake_pipe_) != 0) {
        throw std::runtime_error("pipe failed");
    }
}

Launcher::~Launcher() {
    stop();
    ::close(wake_pipe_[0]);
    ::close(wake_pipe_[1]);
}

void Launcher::say(const std::string& line) {
    std::lock_guard lock(output_mutex_);
    std::cout << std::string(prefix_width_ - std::min(prefix_width_, std::size_t{8}), ' ')
              << "calcmesh | " << line << '\n'
              << std::flush;
}

bool Launcher::spawn(Child& child) {
    ChildProcess::Options options;
    options.argv = child.spec.argv;
    options.env = child.spec.env;
    options.pipe_output = true;
    try {
        child.process = std::make_unique<ChildProcess>(options);
    } catch (const std::exception& error) {
        say("cannot start " + child.spec.name + ": " + error.what());
        return false;
    }
    child.state = Child::State::starting;
    child.until = Clock::now() + ready_timeout_;
    const int output = ::fcntl(child.process->output_fd(), F_DUPFD_CLOEXEC, 0);
    if (output >= 0) {
        std::lock_guard lock(output_mutex_);
        new_outputs_.emplace_back(output, child.spec.name);
    }
    if (!output_thread_.joinable()) {
        output_thread_ = std::thread([this] { pump_output(); });
    } else {
        (void)!::write(wake_pipe_[1], "x", 1);  // to poll the new pipe too
    }
    return true;
}

Launcher::Progress Launcher::advance_start(Child& child, std::string& failure) {
    if (auto status = child.process->poll()) {
        failure = describe_wait_status(*status) + " while starting (its output is above)";
        return Progress::failed;
    }
    if (Clock::now() > child.until) {
        failure = "did not become ready within " + seconds_text(ready_timeout_);
        return Progress::failed;
    }
    if (!child.spec.ready()) {
        return Progress::starting;
    }
    if (child.spec.after_ready) {
        try {
            child.spec.after_ready();
        } catch (const std::exception& error) {
            failure = std::string("failed once ready: ") + error.what();
            return Progress::failed;
        }
    }
    child.state = Child::State::serving;
    child.until = Clock::now();
    write_status();
    return Progress::serving;
}

Launcher::Started Launcher::start(std::vector<ChildSpec> specs) {
    for (const auto& spec : specs) {
        prefix_width_ = std::max(prefix_width_, spec.name.size());
    }
    for (auto& spec : specs) {
        children_.push_back(std::make_unique<Child>());
        auto& child = *children_.back();
        child.spec = std::move(spec);
        child.next_delay = restart_.first_delay;
        if (!spawn(child)) {
            stop();
            return Started::failed;
        }
        std::string failure;
        Progress progress;
        while ((progress = advance_start(child, failure)) == Progress::starting) {
            // A Ctrl-C while a slow child (the broker) starts stops everything at once.
            if (stop_asked()) {
                stop();
                return Started::interrupted;
            }
        }
        if (progress == Progress::failed) {
            say(child.spec.name + " " + failure);
            stop();
            return Started::failed;
        }
    }
    return Started::up;
}

bool Launcher::stop_asked() {
    const auto signals = stop_signals();
    // Short, so that a signal stops a start, a backoff wait or a restart at once.
    const timespec interval{0, 100'000'000};
    const int signal = sigtimedwait(&signals, nullptr, &interval);
    if (signal <= 0) {
        return false;
    }
    say(std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
    return true;
}

bool Launcher::wait() {
    for (;;) {
        if (stop_asked()) {
            return true;
        }
        if (!supervise()) {
            return false;
        }
    }
}

bool Launcher::supervise() {
    for (auto& owned : children_) {
        auto& child = *owned;
        const auto now = Clock::now();
        if (child.state == Child::State::serving) {
            const auto status = child.process->poll();
            if (!status) {
                continue;
            }
            const auto ended = "(pid " + std::to_string(child.process->pid()) + ") " +
                               describe_wait_status(*status) + " unexpectedly";
            if (!restart_.restart) {
                say(child.spec.name + " " + ended + "; stopping the rest");
                return false;
            }
            if (now - child.until >= restart_.reset_after) {
                child.next_delay = restart_.first_delay;
            }
            schedule_restart(child, ended);
        } else if (child.state == Child::State::waiting && now >= child.until) {
            ++child.restarts;
            if (!spawn(child)) {
                schedule_restart(child, "could not be started");
                continue;
            }
            write_status();
        } else if (child.state == Child::State::starting) {
            std::string failure;
            const auto progress = advance_start(child, failure);
            if (progress == Progress::serving) {
                say("*** " + child.spec.name + " serves again (pid " +
                    std::to_string(child.process->pid()) + ", restart " +
                    std::to_string(child.restarts) + ")");
            } else if (progress == Progress::failed) {
                child.process->stop(std::chrono::seconds(2));
                schedule_restart(child, failure);
            }
        }
    }
    return true;
}

void Launcher::schedule_restart(Child& child, const std::string& why) {
    const auto delay = child.next_delay;
    child.next_delay = std::min(delay * 2, restart_.max_delay);
    child.state = Child::State::waiting;
    child.until = Clock::now() + delay;
    child.last_end = why;
    say("*** " + child.spec.name + " " + why + "; restart " + std::to_string(child.restarts + 1) +
        " in " + seconds_text(delay));
    write_status();
}

void Launcher::write_status() {
    if (status_file_.empty() || children_.empty()) {
        return;
    }
    auto services = nlohmann::json::array();
    unsigned restarts = 0;
    for (const auto& child : children_) {
        const bool running =
            child->state == Child::State::starting || child->state == Child::State::serving;
        services.push_back({{"name", child->spec.name},
                            {"state", child->state_name()},
                            {"pid", running ? child->process->pid() : 0},
                            {"restarts", child->restarts},
                            {"last_end", child->last_end}});
        restarts += child->restarts;
    }
    const std::string temporary = status_file_ + ".tmp";
    {
        std::ofstream out(temporary);
        out << nlohmann::json{{"restarts", restarts}, {"services", std::move(services)}}.dump(2)
            << '\n';
    }
    std::error_code ignored;
    std::filesystem::rename(temporary, status_file_, ignored);
}

void Launcher::stop(std::chrono::milliseconds grace) {
    for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
        auto& child = **it;
        const bool running =
            child.process &&
            (child.state == Child::State::starting || child.state == Child::State::serving) &&
            !child.process->poll();
        child.state = Child::State::stopped;
        if (!running) {
            continue;
        }
        const int status = child.process->stop(grace);
        say("stopped " + child.spec.name + " (" + describe_wait_status(status) + ")");
    }
    write_status();
    if (output_thread_.joinable()) {
        (void)!::write(wake_pipe_[1], "q", 1);
        output_thread_.join();
    }
    children_.clear();
}

void Launcher::pump_output() {
    std::map<int, std::pair<std::string, std::string>> open;  // fd -> name, partial line
    const auto close_output = [&open](int fd) {
        open.erase(fd);
        ::close(fd);
    };
    // Large reads: under load the services write many lines at once.
    std::vector<char> buffer(64 * 1024);
    bool quitting = false;
    for (;;) {
        {
            std::lock_guard lock(output_mutex_);
            for (auto& [fd, name] : new_outputs_) {
                open[fd] = {std::move(name), std::string()};
            }
            new_outputs_.clear();
        }
        std::vector<pollfd> fds{{wake_pipe_[0], POLLIN, 0}};
        for (const auto& [fd, state] : open) {
            fds.push_back({fd, POLLIN, 0});
        }
        if (quitting && open.empty()) {
            return;
        }
        ::poll(fds.data(), fds.size(), quitting ? 100 : -1);
        if (fds[0].revents & POLLIN) {
            char command = 0;
            (void)!::read(wake_pipe_[0], &command, 1);
            quitting = quitting || command == 'q';
        }
        for (std::size_t i = 1; i < fds.size(); ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                if (quitting) {
                    close_output(fds[i].fd);  // nothing more pending from a stopped child
                }
                continue;
            }
            const auto got = ::read(fds[i].fd, buffer.data(), buffer.size());
            auto& [name, partial] = open[fds[i].fd];
            if (got > 0) {
                partial.append(buffer.data(), static_cast<std::size_t>(got));
            }
            const std::string prefix = std::string(prefix_width_ - name.size(), ' ') + name + " | ";
            std::string lines;
            std::size_t start = 0;
            std::size_t newline;
            while ((newline = partial.find('\n', start)) != std::string::npos ||
                   (got <= 0 && start < partial.size())) {
                const auto end = newline == std::string::npos ? partial.size() : newline;
                lines += prefix;
                lines.append(partial, start, end - start);
                lines += '\n';
                start = std::min(partial.size(), end + 1);
            }
            partial.erase(0, start);
            {
                std::lock_guard lock(output_mutex_);
                std::cout << lines << std::flush;
            }
            if (got <= 0) {
                close_output(fds[i].fd);
            }
        }
    }
}

}  // namespace calcmesh::tools
