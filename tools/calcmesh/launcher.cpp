#include "launcher.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>

namespace calcmesh::tools {

struct Launcher::Child {
    ChildSpec spec;
    ChildProcess process;
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

}  // namespace

Launcher::Launcher(std::chrono::milliseconds ready_timeout) : ready_timeout_(ready_timeout) {
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
              << "calcmesh | " << line << std::endl;
}

bool Launcher::start(std::vector<ChildSpec> specs) {
    for (const auto& spec : specs) {
        prefix_width_ = std::max(prefix_width_, spec.name.size());
    }
    for (auto& spec : specs) {
        const auto name = spec.name;
        ChildProcess::Options options;
        options.argv = spec.argv;
        options.env = spec.env;
        options.pipe_output = true;
        try {
            auto child = std::make_unique<Child>(Child{std::move(spec), ChildProcess(options)});
            std::lock_guard lock(output_mutex_);
            children_.push_back(std::move(child));
        } catch (const std::exception& error) {
            say("cannot start " + name + ": " + error.what());
            stop();
            return false;
        }
        if (!output_thread_.joinable()) {
            output_thread_ = std::thread([this] { pump_output(); });
        } else {
            // Make the output thread poll the new pipe too.
            (void)!::write(wake_pipe_[1], "x", 1);
        }
        auto& child = *children_.back();
        const auto deadline = std::chrono::steady_clock::now() + ready_timeout_;
        bool ready = false;
        while (!ready) {
            if (auto status = child.process.poll()) {
                say(name + " " + describe_wait_status(*status) +
                    " while starting (its output is above)");
                stop();
                return false;
            }
            if (std::chrono::steady_clock::now() > deadline) {
                say(name + " did not become ready within " +
                    std::to_string(ready_timeout_.count() / 1000) + " s");
                stop();
                return false;
            }
            ready = child.spec.ready();
            if (!ready) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
        if (child.spec.after_ready) {
            try {
                child.spec.after_ready();
            } catch (const std::exception& error) {
                say(name + ": " + error.what());
                stop();
                return false;
            }
        }
    }
    return true;
}

std::string Launcher::ended_child() {
    for (auto& child : children_) {
        if (auto status = child->process.poll()) {
            return child->spec.name + " " + describe_wait_status(*status);
        }
    }
    return {};
}

bool Launcher::wait() {
    const auto signals = stop_signals();
    for (;;) {
        const timespec interval{0, 200'000'000};
        const int signal = sigtimedwait(&signals, nullptr, &interval);
        if (signal > 0) {
            say(std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") +
                ", stopping");
            return true;
        }
        if (const auto ended = ended_child(); !ended.empty()) {
            say(ended + " unexpectedly; stopping the rest");
            return false;
        }
    }
}

void Launcher::stop(std::chrono::milliseconds grace) {
    for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
        auto& child = **it;
        if (child.process.poll()) {
            continue;
        }
        const int status = child.process.stop(grace);
        say("stopped " + child.spec.name + " (" + describe_wait_status(status) + ")");
    }
    if (output_thread_.joinable()) {
        (void)!::write(wake_pipe_[1], "q", 1);
        output_thread_.join();
    }
    std::lock_guard lock(output_mutex_);
    children_.clear();
}

void Launcher::pump_output() {
    std::map<int, std::pair<std::string, std::string>> open;  // fd -> name, partial line
    // Large reads: under load the services write many lines at once.
    std::vector<char> buffer(64 * 1024);
    bool quitting = false;
    for (;;) {
        {
            std::lock_guard lock(output_mutex_);
            for (auto& child : children_) {
                const int fd = child->process.output_fd();
                if (fd >= 0 && !open.contains(fd) && !quitting) {
                    open[fd] = {child->spec.name, {}};
                }
            }
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
                    open.erase(fds[i].fd);  // nothing more pending from a stopped child
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
            std::lock_guard lock(output_mutex_);
            std::cout << lines << std::flush;
            if (got <= 0) {
                open.erase(fds[i].fd);
            }
        }
    }
}

}  // namespace calcmesh::tools
