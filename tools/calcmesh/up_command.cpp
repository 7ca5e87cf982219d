#include <algorithm>
#include <filesystem>
#include <iostream>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/blocking_http.hpp"
#include "calcmesh/config.hpp"
#include "calcmesh/kafka.hpp"
#include "calcmesh/worker_urls.hpp"
#include "commands.hpp"
#include "launcher.hpp"

namespace calcmesh::tools {

namespace {

/// What `calcmesh up` runs, and where.
struct UpOptions {
    std::string bin_dir;
    std::string run_dir = ".run";
    std::string address = "127.0.0.1";
    unsigned short submitter_port = 8080;
    unsigned short help_port = 8081;
    unsigned short collector_port = 8082;
    std::vector<unsigned short> worker_ports = {8091, 8092, 8093, 8094};
    bool kafka = true;
    unsigned short kafka_port = 9092;
    int kafka_partitions = 3;
    std::string kafka_broker = CALCMESH_SOURCE_DIR "/scripts/kafka-broker";
    std::string log_level = "info";
    bool access_log = true;
    unsigned ready_timeout_s = 60;
    std::string restart = "always";
    unsigned restart_delay_ms = 1'000;
    unsigned restart_max_delay_ms = 30'000;
    unsigned restart_reset_after_s = 60;
};

std::string base_url(const UpOptions& options, unsigned short port) {
    return "http://" + options.address + ":" + std::to_string(port);
}

/// Ready when GET /readyz answers 200.
std::function<bool()> http_ready(std::string url) {
    return [url = std::move(url) + "/readyz"] {
        auto response = blocking_http(http::verb::get, url, {}, {}, std::chrono::milliseconds(500));
        return response && response.value().status == 200;
    };
}

ChildSpec service(const UpOptions& options, std::string name, const std::string& binary,
                  unsigned short port, std::vector<std::pair<std::string, std::string>> env) {
    env.emplace_back("CALCMESH_LISTEN_ADDRESS", options.address);
    env.emplace_back("CALCMESH_PORT", std::to_string(port));
    env.emplace_back("CALCMESH_LOG_LEVEL", options.log_level);
    env.emplace_back("CALCMESH_ACCESS_LOG", options.access_log ? "true" : "false");
    return ChildSpec{std::move(name),
                     {options.bin_dir + "/" + binary},
                     std::move(env),
                     http_ready(base_url(options, port)),
                     {}};
}

std::string bootstrap(const UpOptions& options) {
    return options.address + ":" + std::to_string(options.kafka_port);
}

/// The Kafka broker, ready once it answers; then the five topics are created.
ChildSpec kafka_broker(const UpOptions& options) {
    const auto servers = bootstrap(options);
    return ChildSpec{"kafka",
                     {options.kafka_broker, "run", "--data-dir", options.run_dir + "/kafka",
                      "--port", std::to_string(options.kafka_port), "--host", options.address},
                     {},
                     [servers] { return broker_answers(servers, std::chrono::milliseconds(500)); },
                     [servers, partitions = options.kafka_partitions] {
                         const KafkaConfig topics;
                         std::vector<std::string> names(topics.request_topics.begin(),
                                                        topics.request_topics.end());
                         names.push_back(topics.results_topic);
                         auto created =
                             create_topics(servers, names, partitions, std::chrono::seconds(15));
                         if (!created) {
                             throw std::runtime_error(created.error().message);
                         }
                     }};
}

std::vector<ChildSpec> system_specs(const UpOptions& options) {
    std::vector<std::pair<std::string, std::string>> kafka;
    if (options.kafka) {
        kafka.emplace_back("CALCMESH_KAFKA_BOOTSTRAP_SERVERS", bootstrap(options));
    }
    std::vector<std::pair<std::string, std::string>> worker_urls = kafka;
    for (const auto operation : kAllOperations) {
        worker_urls.emplace_back(
            env_name(std::string(operation_name(operation)) + "-worker-url"),
            base_url(options, options.worker_ports[static_cast<std::size_t>(operation)]));
    }
    std::vector<ChildSpec> specs;
    if (options.kafka) {
        specs.push_back(kafka_broker(options));
    }
    specs.push_back(service(options, "log_collector", "log_collector", options.collector_port,
                            {{"CALCMESH_DATA_DIR", options.run_dir + "/log_collector"}}));
    for (const auto operation : kAllOperations) {
        auto env = kafka;
        env.emplace_back("CALCMESH_OPERATION", std::string(operation_name(operation)));
        env.emplace_back("CALCMESH_LOG_COLLECTOR_URL", base_url(options, options.collector_port));
        specs.push_back(service(options, worker_name(operation), "worker",
                                options.worker_ports[static_cast<std::size_t>(operation)],
                                std::move(env)));
    }
    specs.push_back(
        service(options, "job_submitter", "job_submitter", options.submitter_port, worker_urls));
    specs.push_back(service(options, "help_page", "help_page", options.help_port, worker_urls));
    return specs;
}

int run_up(UpOptions options) {
    if (options.worker_ports.size() != 4) {
        std::cerr << "calcmesh up: --worker-ports needs 4 ports (addition, subtraction, "
                     "multiplication, division)\n";
        return 2;
    }
    for (const char* binary : {"worker", "job_submitter", "help_page", "log_collector"}) {
        if (!std::filesystem::exists(std::filesystem::path(options.bin_dir) / binary)) {
            std::cerr << "calcmesh up: " << binary << " not found in " << options.bin_dir
                      << " (build first, or pass --bin-dir)\n";
            return 2;
        }
    }
    std::filesystem::create_directories(options.run_dir);
    options.run_dir = std::filesystem::absolute(options.run_dir).string();

    RestartPolicy restart;
    restart.restart = options.restart == "always";
    restart.first_delay = std::chrono::milliseconds(options.restart_delay_ms);
    restart.max_delay =
        std::chrono::milliseconds(std::max(options.restart_max_delay_ms, options.restart_delay_ms));
    restart.reset_after = std::chrono::seconds(options.restart_reset_after_s);
    Launcher launcher(std::chrono::seconds(options.ready_timeout_s), restart,
                      options.run_dir + "/status.json");
    switch (launcher.start(system_specs(options))) {
        case Launcher::Started::failed:
            return 1;
        case Launcher::Started::interrupted:
            return 0;  // stopped as asked, as after a Ctrl-C once up
        case Launcher::Started::up:
            break;
    }
    launcher.say("calcmesh is up (data in " + options.run_dir + "):");
    launcher.say("  job_submitter          " + base_url(options, options.submitter_port) +
                 "   POST /submit, GET /jobs/<id>, GET / (a form)");
    launcher.say("  help_page              " + base_url(options, options.help_port));
    launcher.say("  log_collector          " + base_url(options, options.collector_port) + "/logs");
    for (const auto operation : kAllOperations) {
        launcher.say("  " + worker_name(operation) +
                     std::string(23 - worker_name(operation).size(), ' ') +
                     base_url(options, options.worker_ports[static_cast<std::size_t>(operation)]));
    }
    if (options.kafka) {
        launcher.say("  kafka                  " + bootstrap(options) +
                     "   topics addition_requests, subtraction_requests, "
                     "multiplication_requests, division_requests, results");
    }
    launcher.say("try: curl -s " + base_url(options, options.submitter_port) +
                 "/submit -H 'content-type: application/json' -d "
                 "'{\"operation\":\"multiplication\",\"a\":6,\"b\":7,\"mechanism\":\"http\"}'");
    if (restart.restart) {
        launcher.say("a service that ends is restarted (restarts and states in " + options.run_dir +
                     "/status.json)");
    }
    launcher.say("press Ctrl-C to stop");
    const bool asked = launcher.wait();
    launcher.stop();
    return asked ? 0 : 1;
}

}  // namespace

void add_up_command(CLI::App& app, const std::string& own_directory) {
    auto options = std::make_shared<UpOptions>();
    options->bin_dir = own_directory;
    auto* command = add_command(app, "up", "Run the whole system on this machine until Ctrl-C",
                                [options] { return run_up(*options); });
    command->add_option("--bin-dir", options->bin_dir, "Where the calcmesh binaries are")
        ->capture_default_str();
    command->add_option("--run-dir", options->run_dir, "Where data and logs are kept")
        ->capture_default_str();
    command->add_option("--address", options->address, "Address every service listens on")
        ->capture_default_str();
    command->add_option("--submitter-port", options->submitter_port)->capture_default_str();
    command->add_option("--help-port", options->help_port)->capture_default_str();
    command->add_option("--collector-port", options->collector_port)->capture_default_str();
    command
        ->add_option("--worker-ports", options->worker_ports,
                     "Ports of the addition, subtraction, multiplication and division workers")
        ->delimiter(',')
        ->capture_default_str();
    command->add_option("--kafka", options->kafka, "Run the Kafka broker and the kafka mechanism")
        ->capture_default_str();
    command->add_option("--kafka-port", options->kafka_port)->capture_default_str();
    command->add_option("--kafka-partitions", options->kafka_partitions, "Partitions per topic")
        ->check(whole_number(1, 1000))
        ->capture_default_str();
    command->add_option("--kafka-broker", options->kafka_broker, "The script that runs the broker")
        ->capture_default_str();
    command->add_option("--log-level", options->log_level)->capture_default_str();
    command->add_option("--access-log", options->access_log, "Log every HTTP request")
        ->capture_default_str();
    command
        ->add_option("--ready-timeout", options->ready_timeout_s,
                     "Seconds each process may take to become ready")
        ->capture_default_str();
    command
        ->add_option("--restart", options->restart,
                     "always: restart a service that ends, with exponential backoff; never: "
                     "stop the whole system when one ends")
        ->check(CLI::IsMember({"always", "never"}))
        ->capture_default_str();
    command
        ->add_option("--restart-delay", options->restart_delay_ms,
                     "Milliseconds before the first restart; each further one in a row doubles")
        ->check(whole_number(1u, 3'600'000u))
        ->capture_default_str();
    command
        ->add_option("--restart-max-delay", options->restart_max_delay_ms,
                     "The longest wait before a restart, in milliseconds")
        ->check(whole_number(1u, 3'600'000u))
        ->capture_default_str();
    command
        ->add_option("--restart-reset-after", options->restart_reset_after_s,
                     "Seconds a service must serve before its next restart waits "
                     "--restart-delay again")
        ->check(whole_number(1u, 86'400u))
        ->capture_default_str();
}

}  // namespace calcmesh::tools
