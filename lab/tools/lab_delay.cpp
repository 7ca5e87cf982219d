// lab_delay: holds every packet of one NFQUEUE for a fixed time, then accepts it. `calcmesh lab
// fault delay` runs one in each pod of the delayed cluster (the kernel has no sch_netem). It
// speaks nfnetlink_queue directly: bind the queue, ask for packet metadata only, and answer with
// batch verdicts. Packets arrive in id order and all wait the same time, so one batch verdict
// ("accept every id up to N") releases all that are due, and also any whose notice was lost.
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t stopping = 0;

class QueueSocket {
  public:
    explicit QueueSocket(std::uint16_t queue) : queue_(queue) {
        fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
        if (fd_ < 0) {
            fail("netlink socket");
        }
        sockaddr_nl local{};
        local.nl_family = AF_NETLINK;
        if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
            fail("bind netlink socket");
        }
        const int buffer = 8 << 20;
        setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof(buffer));
        // A burst beyond the buffer loses notices, not packets: the next batch verdict covers them.
        const int on = 1;
        setsockopt(fd_, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof(on));

        nfqnl_msg_config_cmd bind_queue{};
        bind_queue.command = NFQNL_CFG_CMD_BIND;
        bind_queue.pf = htons(AF_INET);
        configure(NFQA_CFG_CMD, &bind_queue, sizeof(bind_queue));

        struct __attribute__((packed)) {
            std::uint32_t copy_range;
            std::uint8_t copy_mode;
        } params{0, NFQNL_COPY_META};
        configure(NFQA_CFG_PARAMS, &params, sizeof(params));

        const std::uint32_t max_length = htonl(65536);
        configure(NFQA_CFG_QUEUE_MAXLEN, &max_length, sizeof(max_length));

        // GSO packets stay whole; a full queue accepts instead of dropping.
        const std::uint32_t flags = htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN);
        std::vector<char> both(2 * NLA_HDRLEN + 2 * NLA_ALIGN(sizeof(flags)));
        add_attribute(both, 0, NFQA_CFG_FLAGS, &flags, sizeof(flags));
        add_attribute(both, NLA_HDRLEN + NLA_ALIGN(sizeof(flags)), NFQA_CFG_MASK, &flags,
                      sizeof(flags));
        send_message(NFQNL_MSG_CONFIG, both, true);
    }
    ~QueueSocket() { close(fd_); }

    int fd() const { return fd_; }

    /// Reads every pending notice; returns the ids of the packets, in order.
    std::vector<std::uint32_t> receive() {
        std::vector<std::uint32_t> ids;
        alignas(nlmsghdr) char buffer[65536];
        for (;;) {
            const auto n = recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return ids;
                }
                fail("recv");
            }
            auto remaining = static_cast<int>(n);
            for (auto* message = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(message, remaining);
                 message = NLMSG_NEXT(message, remaining)) {
                if (message->nlmsg_type == NLMSG_ERROR) {
                    const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(message));
                    if (error->error != 0) {
                        throw std::runtime_error(std::string("nfqueue: ") +
                                                 strerror(-error->error));
                    }
                    continue;
                }
                if (message->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) {
                    continue;
                }
                if (const auto id = packet_id(message)) {
                    ids.push_back(*id);
                }
            }
        }
    }

    /// Accepts every packet of the queue whose id is at most `id`.
    void accept_up_to(std::uint32_t id) {
        nfqnl_msg_verdict_hdr verdict{htonl(NF_ACCEPT), htonl(id)};
        std::vector<char> attribute(NLA_HDRLEN + NLA_ALIGN(sizeof(verdict)));
        add_attribute(attribute, 0, NFQA_VERDICT_HDR, &verdict, sizeof(verdict));
        send_message(NFQNL_MSG_VERDICT_BATCH, attribute, false);
    }

  private:
    [[noreturn]] static void fail(const std::string& what) {
        throw std::runtime_error(what + ": " + strerror(errno));
    }

    static void add_attribute(std::vector<char>& out, std::size_t offset, std::uint16_t type,
                              const void* data, std::size_t size) {
        nlattr header{static_cast<std::uint16_t>(NLA_HDRLEN + size), type};
        std::memcpy(out.data() + offset, &header, sizeof(header));
        std::memcpy(out.data() + offset + NLA_HDRLEN, data, size);
    }

    void configure(std::uint16_t type, const void* data, std::size_t size) {
        std::vector<char> attribute(NLA_HDRLEN + NLA_ALIGN(size));
        add_attribute(attribute, 0, type, data, size);
        send_message(NFQNL_MSG_CONFIG, attribute, true);
    }

    // Sends one nfnetlink message to the queue; with `acknowledged`, waits for the kernel's answer.
    void send_message(std::uint16_t type, const std::vector<char>& attributes, bool acknowledged) {
        std::vector<char> message(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)) + attributes.size());
        auto* header = reinterpret_cast<nlmsghdr*>(message.data());
        header->nlmsg_len = static_cast<std::uint32_t>(message.size());
        header->nlmsg_type = static_cast<std::uint16_t>((NFNL_SUBSYS_QUEUE << 8) | type);
        header->nlmsg_flags = NLM_F_REQUEST | (acknowledged ? NLM_F_ACK : 0);
        header->nlmsg_seq = ++sequence_;
        auto* family = static_cast<nfgenmsg*>(NLMSG_DATA(header));
        family->nfgen_family = AF_UNSPEC;
        family->version = NFNETLINK_V0;
        family->res_id = htons(queue_);
        std::memcpy(message.data() + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)),
                    attributes.data(), attributes.size());
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        if (sendto(fd_, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                   sizeof(kernel)) < 0) {
            fail("sendto");
        }
        if (!acknowledged) {
            return;
        }
        alignas(nlmsghdr) char answer[4096];
        const auto n = recv(fd_, answer, sizeof(answer), 0);
        if (n < 0) {
            fail("recv");
        }
        const auto* reply = reinterpret_cast<const nlmsghdr*>(answer);
        if (reply->nlmsg_type == NLMSG_ERROR) {
            const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(reply));
            if (error->error != 0) {
                errno = -error->error;
                fail("configuring queue " + std::to_string(queue_));
            }
        }
    }

    static std::optional<std::uint32_t> packet_id(const nlmsghdr* message) {
        const auto* start =
            static_cast<const char*>(NLMSG_DATA(message)) + NLMSG_ALIGN(sizeof(nfgenmsg));
        const auto* end = reinterpret_cast<const char*>(message) + message->nlmsg_len;
        while (start + NLA_HDRLEN <= end) {
            const auto* attribute = reinterpret_cast<const nlattr*>(start);
            if (attribute->nla_len < NLA_HDRLEN) {
                break;
            }
            if ((attribute->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR) {
                nfqnl_msg_packet_hdr header{};
                std::memcpy(&header, start + NLA_HDRLEN, sizeof(header));
                return ntohl(header.packet_id);
            }
            start += NLA_ALIGN(attribute->nla_len);
        }
        return std::nullopt;
    }

    int fd_ = -1;
    std::uint16_t queue_;
    std::uint32_t sequence_ = 0;
};

struct Held {
    std::uint32_t id;
    Clock::time_point due;
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Delays every packet of an NFQUEUE by a fixed time"};
    std::uint16_t queue = 0;
    int delay_ms = 0;
    app.add_option("--queue", queue, "Queue number")->required();
    app.add_option("--delay-ms", delay_ms, "How long each packet waits")
        ->required()
        ->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);

    struct sigaction stop {};
    stop.sa_handler = [](int) { stopping = 1; };
    sigaction(SIGTERM, &stop, nullptr);
    sigaction(SIGINT, &stop, nullptr);
    try {
        QueueSocket socket(queue);
        std::cerr << "lab_delay: queue " << queue << " bound, delay " << delay_ms << " ms\n";
        const auto delay = std::chrono::milliseconds(delay_ms);
        std::deque<Held> held;
        std::uint64_t released = 0;
        while (!stopping) {
            int timeout = -1;
            if (!held.empty()) {
                const auto wait =
                    std::chrono::ceil<std::chrono::milliseconds>(held.front().due - Clock::now());
                timeout = static_cast<int>(std::max<std::int64_t>(wait.count(), 0));
            }
            pollfd readable{socket.fd(), POLLIN, 0};
            poll(&readable, 1, timeout);
            const auto now = Clock::now();
            if (readable.revents & POLLIN) {
                for (const auto id : socket.receive()) {
                    held.push_back({id, now + delay});
                }
            }
            std::optional<std::uint32_t> last_due;
            while (!held.empty() && held.front().due <= now) {
                last_due = held.front().id;
                held.pop_front();
                ++released;
            }
            if (last_due) {
                socket.accept_up_to(*last_due);
            }
        }
        // Nothing held is dropped on the way out.
        if (!held.empty()) {
            socket.accept_up_to(held.back().id);
        }
        std::cerr << "lab_delay: stopped after " << released << " packets\n";
    } catch (const std::exception& error) {
        std::cerr << "lab_delay: " << error.what() << '\n';
        return 1;
    }
    return 0;
}
