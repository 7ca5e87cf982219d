#include "calcmesh/kafka.hpp"

#include <fmt/ranges.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace calcmesh {

// Settings shared by every client, chosen for low latency on a local or in-cluster broker.
// Each is listed with its reason in the README.
namespace {

void set(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
    std::string error;
    if (conf.set(name, value, error) != RdKafka::Conf::CONF_OK) {
        throw std::invalid_argument("kafka setting " + name + "=" + value + ": " + error);
    }
}

std::unique_ptr<RdKafka::Conf> base_conf(const std::string& bootstrap_servers,
                                         const std::string& client_id) {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    set(*conf, "bootstrap.servers", bootstrap_servers);
    set(*conf, "client.id", client_id);
    set(*conf, "socket.nagle.disable", "true");
    set(*conf, "reconnect.backoff.max.ms", "1000");
    set(*conf, "socket.connection.setup.timeout.ms", "5000");
    set(*conf, "log.connection.close", "false");
    return conf;
}

/// Forwards librdkafka's own log lines and errors to spdlog.
class LogEvents : public RdKafka::EventCb {
  public:
    explicit LogEvents(std::atomic<bool>* reachable = nullptr) : reachable_(reachable) {}
    void event_cb(RdKafka::Event& event) override {
        if (event.type() == RdKafka::Event::EVENT_ERROR) {
            if (reachable_ && (event.err() == RdKafka::ERR__ALL_BROKERS_DOWN ||
                               event.err() == RdKafka::ERR__TRANSPORT)) {
                reachable_->store(false);
            }
            spdlog::warn("event=kafka_error error=\"{}\" detail=\"{}\"",
                         RdKafka::err2str(event.err()), event.str());
        } else if (event.type() == RdKafka::Event::EVENT_LOG &&
                   event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
            spdlog::warn("event=kafka_log facility={} message=\"{}\"", event.fac(), event.str());
        }
    }

  private:
    std::atomic<bool>* reachable_;
};

/// Owns a handle of librdkafka's C API, released with its `destroy` function.
template <auto destroy>
struct Destroy {
    void operator()(auto* handle) const { destroy(handle); }
};
template <class Handle, auto destroy>
using CHandle = std::unique_ptr<Handle, Destroy<destroy>>;

using ConfHandle = CHandle<rd_kafka_conf_t, rd_kafka_conf_destroy>;
using ClientHandle = CHandle<rd_kafka_t, rd_kafka_destroy>;
using NewTopicHandle = CHandle<rd_kafka_NewTopic_t, rd_kafka_NewTopic_destroy>;
using AdminOptionsHandle = CHandle<rd_kafka_AdminOptions_t, rd_kafka_AdminOptions_destroy>;
using QueueHandle = CHandle<rd_kafka_queue_t, rd_kafka_queue_destroy>;
using EventHandle = CHandle<rd_kafka_event_t, rd_kafka_event_destroy>;

/// Partitions as librdkafka's C++ API takes them, owned: destroyed on every path out.
class TopicPartitions {
  public:
    TopicPartitions() = default;
    TopicPartitions(const TopicPartitions&) = delete;
    TopicPartitions& operator=(const TopicPartitions&) = delete;
    ~TopicPartitions() { RdKafka::TopicPartition::destroy(list_); }

    void add(const std::string& topic, std::int32_t partition, std::int64_t offset) {
        list_.push_back(RdKafka::TopicPartition::create(topic, partition, offset));
    }
    std::vector<RdKafka::TopicPartition*>& list() { return list_; }

  private:
    std::vector<RdKafka::TopicPartition*> list_;
};

/// True if the broker answers a metadata request of `client` within `timeout_ms`.
bool metadata_answers(RdKafka::Handle& client, int timeout_ms) {
    RdKafka::Metadata* raw = nullptr;
    const auto code = client.metadata(true, nullptr, &raw, timeout_ms);
    const std::unique_ptr<RdKafka::Metadata> metadata(raw);
    return code == RdKafka::ERR_NO_ERROR;
}

}  // namespace

void KafkaConfig::add_to(ConfigParser& parser) {
    parser.add("kafka-bootstrap-servers", bootstrap_servers,
               "Kafka brokers, host:port[,host:port]; empty turns the kafka mechanism off");
    for (const auto operation : kAllOperations) {
        parser.add("topic-" + std::string(operation_name(operation)) + "-requests",
                   request_topics[static_cast<std::size_t>(operation)],
                   "Topic of " + std::string(operation_name(operation)) + " jobs");
    }
    parser.add("topic-results", results_topic, "Topic of job results");
}

bool broker_answers(const std::string& bootstrap_servers, std::chrono::milliseconds timeout) {
    auto conf = base_conf(bootstrap_servers, "calcmesh-probe");
    set(*conf, "log_level", "0");
    std::string error;
    std::unique_ptr<RdKafka::Producer> client(RdKafka::Producer::create(conf.get(), error));
    if (!client) {
        return false;
    }
    return metadata_answers(*client, static_cast<int>(timeout.count()));
}

Result<void> create_topics(const std::string& bootstrap_servers,
                           const std::vector<std::string>& topics, int partitions,
                           std::chrono::milliseconds timeout) {
    char error[512];
    ConfHandle conf(rd_kafka_conf_new());
    if (rd_kafka_conf_set(conf.get(), "bootstrap.servers", bootstrap_servers.c_str(), error,
                          sizeof error) != RD_KAFKA_CONF_OK) {
        return fail(ErrorCode::broker_unavailable, std::string("bootstrap servers: ") + error);
    }
    // rd_kafka_new takes the configuration only when it succeeds.
    const ClientHandle client(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error, sizeof error));
    if (!client) {
        return fail(ErrorCode::broker_unavailable, std::string("kafka client: ") + error);
    }
    static_cast<void>(conf.release());
    std::vector<NewTopicHandle> requests;
    std::vector<rd_kafka_NewTopic_t*> request_list;
    for (const auto& topic : topics) {
        requests.emplace_back(
            rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, error, sizeof error));
        if (!requests.back()) {
            return fail(ErrorCode::broker_unavailable,
                        "cannot create topic " + topic + ": " + error);
        }
        request_list.push_back(requests.back().get());
    }
    const AdminOptionsHandle options(
        rd_kafka_AdminOptions_new(client.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
    rd_kafka_AdminOptions_set_operation_timeout(options.get(), static_cast<int>(timeout.count()),
                                                error, sizeof error);
    rd_kafka_AdminOptions_set_request_timeout(options.get(), static_cast<int>(timeout.count()),
                                              error, sizeof error);
    const QueueHandle queue(rd_kafka_queue_new(client.get()));
    rd_kafka_CreateTopics(client.get(), request_list.data(), request_list.size(), options.get(),
                          queue.get());

    const EventHandle event(
        rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 1000));
    if (!event) {
        return fail(ErrorCode::broker_unavailable, "no answer from Kafka to CreateTopics");
    }
    if (rd_kafka_event_error(event.get())) {
        return fail(ErrorCode::broker_unavailable, std::string("CreateTopics failed: ") +
                                                       rd_kafka_event_error_string(event.get()));
    }
    std::size_t count = 0;
    const auto** results = rd_kafka_CreateTopics_result_topics(
        rd_kafka_event_CreateTopics_result(event.get()), &count);
    for (std::size_t i = 0; i < count; ++i) {
        const auto code = rd_kafka_topic_result_error(results[i]);
        if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            const char* message = rd_kafka_topic_result_error_string(results[i]);
            return fail(ErrorCode::broker_unavailable,
                        std::string("cannot create topic ") +
                            rd_kafka_topic_result_name(results[i]) + ": " +
                            (message ? message : rd_kafka_err2str(code)));
        }
    }
    return boost::outcome_v2::success();
}

// ---- KafkaProducer ---------------------------------------------------------------------------

class KafkaProducer::Callbacks : public RdKafka::DeliveryReportCb {
  public:
    Callbacks(KafkaProducer& owner) : owner_(owner), events_(&owner.reachable_) {}

    void dr_cb(RdKafka::Message& message) override {
        std::unique_ptr<DeliveryCallback> delivered(
            static_cast<DeliveryCallback*>(message.msg_opaque()));
        if (message.err() == RdKafka::ERR_NO_ERROR) {
            owner_.reachable_ = true;
            owner_.delivered_.add();
            (*delivered)(boost::outcome_v2::success());
        } else {
            owner_.failed_.add();
            (*delivered)(fail(ErrorCode::broker_unavailable,
                              "Kafka did not take the message: " + message.errstr()));
        }
    }
    LogEvents& events() { return events_; }

  private:
    KafkaProducer& owner_;
    LogEvents events_;
};

KafkaProducer::KafkaProducer(const std::string& bootstrap_servers, const std::string& client_id,
                             MetricsRegistry& metrics)
    : callbacks_(std::make_unique<Callbacks>(*this)),
      delivered_(metrics.counter("calcmesh_kafka_messages_delivered_total",
                                 "Messages the Kafka broker acknowledged.")),
      failed_(metrics.counter("calcmesh_kafka_messages_failed_total",
                              "Messages that could not be delivered to Kafka.")) {
    auto conf = base_conf(bootstrap_servers, client_id);
    set(*conf, "enable.idempotence", "true");
    set(*conf, "linger.ms", "0");
    set(*conf, "message.timeout.ms", "10000");
    set(*conf, "queue.buffering.max.kbytes", "16384");
    std::string error;
    if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(callbacks_.get()), error) !=
            RdKafka::Conf::CONF_OK ||
        conf->set("event_cb", static_cast<RdKafka::EventCb*>(&callbacks_->events()), error) !=
            RdKafka::Conf::CONF_OK) {
        throw std::invalid_argument("kafka producer callbacks: " + error);
    }
    producer_.reset(RdKafka::Producer::create(conf.get(), error));
    if (!producer_) {
        throw std::invalid_argument("kafka producer: " + error);
    }
    metrics.gauge("calcmesh_kafka_broker_reachable", "1 while the Kafka broker answers.",
                  [this] { return reachable_.load() ? 1.0 : 0.0; });
    thread_ = std::thread([this] { run(); });
}

void KafkaProducer::flush(std::chrono::milliseconds timeout) {
    producer_->flush(static_cast<int>(timeout.count()));
}

KafkaProducer::~KafkaProducer() {
    stopping_ = true;
    thread_.join();
    if (producer_->flush(5000) != RdKafka::ERR_NO_ERROR) {
        spdlog::error("event=kafka_messages_lost_at_shutdown messages={}", producer_->outq_len());
        producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
        producer_->poll(0);  // runs the delivery callbacks of the purged messages
    }
}

void KafkaProducer::run() {
    auto last_probe = std::chrono::steady_clock::time_point{};
    while (!stopping_) {
        producer_->poll(50);
        // Ask the broker for metadata now and then: a broker that comes back is noticed
        // without waiting for traffic, and one that went away is noticed by the error event.
        const auto now = std::chrono::steady_clock::now();
        if (now - last_probe >= std::chrono::seconds(1)) {
            last_probe = now;
            reachable_ = metadata_answers(*producer_, 500);
            probed_ = true;
        }
    }
}

void KafkaProducer::produce(const std::string& topic, const std::string& key,
                            const std::string& value, DeliveryCallback delivered) {
    auto* opaque = new DeliveryCallback(std::move(delivered));
    const auto code = producer_->produce(
        topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
        const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, opaque);
    if (code != RdKafka::ERR_NO_ERROR) {
        std::unique_ptr<DeliveryCallback> callback(opaque);
        failed_.add();
        (*callback)(fail(ErrorCode::broker_unavailable,
                         "cannot queue a message for " + topic + ": " + RdKafka::err2str(code)));
    }
}

// ---- KafkaConsumer ---------------------------------------------------------------------------

class KafkaConsumer::Rebalance : public RdKafka::RebalanceCb {
  public:
    explicit Rebalance(KafkaConsumer& owner) : owner_(owner) {}

    void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode code,
                      std::vector<RdKafka::TopicPartition*>& partitions) override {
        if (code == RdKafka::ERR__ASSIGN_PARTITIONS) {
            consumer->assign(partitions);
            if (owner_.paused_) {
                // Partitions that arrive during a pause wait for its end like the others.
                consumer->pause(partitions);
            }
            owner_.ready_ = true;
            spdlog::info("event=kafka_partitions_assigned count={}", partitions.size());
        } else {
            {
                // Work in flight on revoked partitions will be redone by their new owner.
                std::lock_guard lock(owner_.progress_mutex_);
                for (const auto* partition : partitions) {
                    owner_.progress_.erase({partition->topic(), partition->partition()});
                }
            }
            consumer->unassign();
            spdlog::info("event=kafka_partitions_revoked count={}", partitions.size());
        }
    }
    LogEvents& events() { return events_; }

  private:
    KafkaConsumer& owner_;
    LogEvents events_;
};

KafkaConsumer::KafkaConsumer(Options options, Handler handler)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      rebalance_(std::make_unique<Rebalance>(*this)) {
    auto conf = base_conf(options_.bootstrap_servers, options_.client_id);
    set(*conf, "group.id", options_.group_id);
    set(*conf, "fetch.wait.max.ms", "100");
    set(*conf, "fetch.error.backoff.ms", "50");
    set(*conf, "queued.max.messages.kbytes", "1024");
    set(*conf, "queued.min.messages", "1000");
    set(*conf, "allow.auto.create.topics", "false");
    set(*conf, "session.timeout.ms", "6000");
    set(*conf, "heartbeat.interval.ms", "1000");
    if (options_.mode == Mode::group) {
        // At least once: an offset is stored (then auto-committed) only when its work is done.
        set(*conf, "enable.auto.offset.store", "false");
        set(*conf, "enable.auto.commit", "true");
        set(*conf, "auto.commit.interval.ms", "200");
        set(*conf, "auto.offset.reset", "earliest");
    } else {
        set(*conf, "enable.auto.commit", "false");
    }
    std::string error;
    if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(rebalance_.get()), error) !=
            RdKafka::Conf::CONF_OK ||
        conf->set("event_cb", static_cast<RdKafka::EventCb*>(&rebalance_->events()), error) !=
            RdKafka::Conf::CONF_OK) {
        throw std::invalid_argument("kafka consumer callbacks: " + error);
    }
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
    if (!consumer_) {
        throw std::invalid_argument("kafka consumer: " + error);
    }
    if (options_.mode == Mode::group) {
        if (const auto code = consumer_->subscribe(options_.topics);
            code != RdKafka::ERR_NO_ERROR) {
            throw std::invalid_argument("kafka subscribe: " + RdKafka::err2str(code));
        }
    }
    thread_ = std::thread([this] { run(); });
}

void KafkaConsumer::stop() {
    stopping_ = true;
    if (thread_.joinable()) {
        thread_.join();
    }
}

KafkaConsumer::~KafkaConsumer() {
    stop();
    consumer_->close();
}

bool KafkaConsumer::assign_tail() {
    TopicPartitions partitions;
    for (const auto& name : options_.topics) {
        std::string error;
        std::unique_ptr<RdKafka::Topic> topic(
            RdKafka::Topic::create(consumer_.get(), name, nullptr, error));
        if (!topic) {
            return false;
        }
        RdKafka::Metadata* raw = nullptr;
        const auto code = consumer_->metadata(false, topic.get(), &raw, 1000);
        const std::unique_ptr<RdKafka::Metadata> metadata(raw);
        if (code != RdKafka::ERR_NO_ERROR) {
            return false;
        }
        for (const auto* topic_metadata : *metadata->topics()) {
            if (topic_metadata->err() != RdKafka::ERR_NO_ERROR ||
                topic_metadata->partitions()->empty()) {
                spdlog::warn("event=kafka_topic_unavailable topic={} error=\"{}\"", name,
                             RdKafka::err2str(topic_metadata->err()));
                return false;
            }
            for (const auto* partition : *topic_metadata->partitions()) {
                std::int64_t low = 0;
                std::int64_t high = 0;
                if (consumer_->query_watermark_offsets(name, partition->id(), &low, &high, 1000) !=
                    RdKafka::ERR_NO_ERROR) {
                    return false;
                }
                // An explicit start offset: nothing produced after this point can be missed.
                partitions.add(name, partition->id(), high);
            }
        }
    }
    consumer_->assign(partitions.list());
    return true;
}

void KafkaConsumer::run() {
    while (!stopping_) {
        if (options_.mode == Mode::tail && !ready_) {
            if (assign_tail()) {
                ready_ = true;
                spdlog::info("event=kafka_tail_assigned topics={}",
                             fmt::join(options_.topics, ","));
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(500));
                continue;
            }
        }
        if (options_.accepting && options_.accepting() == paused_) {
            set_paused(!paused_);
        }
        // While paused this still serves the group's callbacks, so the consumer keeps its
        // partitions; a message fetched before the pause may still come, and is handled.
        std::unique_ptr<RdKafka::Message> message(consumer_->consume(100));
        if (message->err() == RdKafka::ERR__TIMED_OUT ||
            message->err() == RdKafka::ERR__PARTITION_EOF) {
            continue;
        }
        if (message->err() != RdKafka::ERR_NO_ERROR) {
            spdlog::warn("event=kafka_consume_error error=\"{}\"", message->errstr());
            continue;
        }
        KafkaMessage consumed{
            message->topic_name(), message->partition(), message->offset(),
            message->key() ? *message->key() : std::string(),
            std::string(static_cast<const char*>(message->payload()), message->len())};
        if (options_.mode == Mode::group) {
            track(consumed);
        }
        handler_(consumed);
    }
}

void KafkaConsumer::set_paused(bool paused) {
    TopicPartitions partitions;
    consumer_->assignment(partitions.list());
    const auto code =
        paused ? consumer_->pause(partitions.list()) : consumer_->resume(partitions.list());
    if (code != RdKafka::ERR_NO_ERROR) {
        spdlog::warn("event=kafka_{}_failed error=\"{}\"", paused ? "pause" : "resume",
                     RdKafka::err2str(code));
        return;  // tried again before the next message
    }
    paused_ = paused;
    spdlog::info("event=kafka_consumption_{} group={}", paused ? "paused" : "resumed",
                 options_.group_id);
}

void KafkaConsumer::track(const KafkaMessage& message) {
    std::lock_guard lock(progress_mutex_);
    progress_[{message.topic, message.partition}].in_flight.insert(message.offset);
}

void KafkaConsumer::complete(const std::string& topic, std::int32_t partition,
                             std::int64_t offset) {
    std::int64_t commit_at = -1;
    {
        std::lock_guard lock(progress_mutex_);
        const auto it = progress_.find({topic, partition});
        if (it == progress_.end() || it->second.in_flight.erase(offset) == 0) {
            return;  // revoked meanwhile
        }
        auto& progress = it->second;
        progress.highest_done = std::max(progress.highest_done, offset);
        // Commit up to the oldest message still in flight, never past it.
        commit_at =
            progress.in_flight.empty() ? progress.highest_done + 1 : *progress.in_flight.begin();
    }
    TopicPartitions position;
    position.add(topic, partition, commit_at);
    consumer_->offsets_store(position.list());
}

}  // namespace calcmesh
