#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/config.hpp"
#include "calcmesh/error.hpp"
#include "calcmesh/metrics.hpp"

namespace RdKafka {  // NOLINT(readability-identifier-naming): librdkafka's namespace
class Producer;
class KafkaConsumer;
}  // namespace RdKafka

namespace calcmesh {

/// Where Kafka is and what its topics are called: the same keys in job_submitter and the
/// workers. An empty bootstrap list turns the Kafka mechanism off.
struct KafkaConfig {
    std::string bootstrap_servers;
    std::array<std::string, 4> request_topics = {"addition_requests", "subtraction_requests",
                                                 "multiplication_requests", "division_requests"};
    std::string results_topic = "results";

    void add_to(ConfigParser& parser);
    bool enabled() const { return !bootstrap_servers.empty(); }
    const std::string& request_topic(Operation operation) const {
        return request_topics[static_cast<std::size_t>(operation)];
    }
};

/// True if a broker of `bootstrap_servers` answers a metadata request within `timeout`.
bool broker_answers(const std::string& bootstrap_servers, std::chrono::milliseconds timeout);

/// Creates topics (no-op for those that exist) through the Kafka admin API. Fails with
/// `broker_unavailable` naming the topic and the broker's answer.
Result<void> create_topics(const std::string& bootstrap_servers,
                           const std::vector<std::string>& topics, int partitions,
                           std::chrono::milliseconds timeout);

/// The process's one Kafka producer: thread-safe, idempotent (no duplicates from retries),
/// tuned for latency. Delivery reports are served by its own thread.
class KafkaProducer {
  public:
    using DeliveryCallback = std::function<void(Result<void>)>;

    /// Throws std::invalid_argument on a configuration the client rejects.
    KafkaProducer(const std::string& bootstrap_servers, const std::string& client_id,
                  MetricsRegistry& metrics);
    ~KafkaProducer();  ///< waits up to 5 s for queued messages, then drops them (logged)

    /// Queues a message; `delivered` runs on the producer's thread once the broker has it
    /// (or with `broker_unavailable` when it cannot be delivered in time).
    void produce(const std::string& topic, const std::string& key, const std::string& value,
                 DeliveryCallback delivered);
    /// Waits up to `timeout` for queued messages to be delivered (their callbacks run).
    void flush(std::chrono::milliseconds timeout);
    /// False while no broker is reachable: callers fail fast instead of queueing.
    bool broker_reachable() const { return reachable_.load(); }
    /// True once the first metadata probe has answered or failed.
    bool broker_probed() const { return probed_.load(); }

  private:
    class Callbacks;
    void run();

    std::unique_ptr<Callbacks> callbacks_;
    std::unique_ptr<RdKafka::Producer> producer_;
    std::atomic<bool> reachable_{false};
    std::atomic<bool> probed_{false};
    std::atomic<bool> stopping_{false};
    Counter& delivered_;
    Counter& failed_;
    std::thread thread_;
};

/// One consumed message.
struct KafkaMessage {
    std::string topic;
    std::int32_t partition = 0;
    std::int64_t offset = 0;
    std::string key;
    std::string value;
};

/// A consumer that hands every message to a handler on its own thread.
///
/// Two ways to read: `group` mode joins a consumer group (replicas share the partitions;
/// offsets are committed only when the handler calls `complete`), `tail` mode reads every
/// partition of the topics from their end at start-up, outside any group (each instance sees
/// everything that follows).
class KafkaConsumer {
  public:
    enum class Mode { group, tail };
    struct Options {
        std::string bootstrap_servers;
        std::string group_id;
        std::string client_id;
        std::vector<std::string> topics;
        Mode mode = Mode::group;
        /// Checked before each message: while it is false, consumption of every assigned
        /// partition is paused (the broker keeps the messages), and resumed once it holds
        /// again. Empty: always take more.
        std::function<bool()> accepting;
    };
    using Handler = std::function<void(const KafkaMessage&)>;

    /// Starts reading. Throws std::invalid_argument on a configuration the client rejects.
    KafkaConsumer(Options options, Handler handler);
    ~KafkaConsumer();  ///< stops, then leaves the group, committing completed offsets

    /// Stops handing out messages (returns once the handler is idle); `complete` still works.
    void stop();

    /// Group mode: the message at `offset` is done; offsets are committed in order, so a
    /// message is never committed before every earlier one of its partition is done.
    /// Thread-safe.
    void complete(const std::string& topic, std::int32_t partition, std::int64_t offset);
    /// True once partitions are assigned (tail mode: positioned at their ends).
    bool ready() const { return ready_.load(); }

  private:
    class Rebalance;
    void run();
    void track(const KafkaMessage& message);
    bool assign_tail();
    /// Pauses or resumes every assigned partition. Consumer thread only.
    void set_paused(bool paused);

    Options options_;
    Handler handler_;
    std::unique_ptr<Rebalance> rebalance_;
    std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
    std::atomic<bool> ready_{false};
    std::atomic<bool> stopping_{false};
    /// Set by the consumer thread only; read by the rebalance callback on the same thread.
    bool paused_ = false;
    std::mutex progress_mutex_;
    /// Per partition: offsets handed to the handler and not yet complete, and the highest
    /// completed one.
    struct Progress {
        std::set<std::int64_t> in_flight;
        std::int64_t highest_done = -1;
    };
    std::map<std::pair<std::string, std::int32_t>, Progress> progress_;
    std::thread thread_;
};

}  // namespace calcmesh
