#include "service_process.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "calcmesh/job.hpp"

namespace calcmesh::testing {

std::string bin_dir() {
    return CALCMESH_BIN_DIR;
}

unsigned time_scale() {
    const char* given = std::getenv("CALCMESH_TEST_TIME_SCALE");
    if (given == nullptr || *given == '\0') {
        return 1;
    }
    unsigned scale = 0;
    const auto [end, error] = std::from_chars(given, given + std::strlen(given), scale);
    if (error != std::errc{} || *end != '\0' || scale == 0) {
        throw std::invalid_argument(std::string("CALCMESH_TEST_TIME_SCALE: expected a positive "
                                                "whole number, got '") +
                                    given + "'");
    }
    return scale;
}

TempDir::TempDir(const std::string& name)
    : path_(std::filesystem::temp_directory_path() /
            ("calcmesh-" + name + "-" + std::to_string(::getpid()) + "-" +
             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()))) {
    std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

ServiceProcess::ServiceProcess(const std::string& binary, std::vector<std::string> args,
                               const std::filesystem::path& work_dir, unsigned short port) {
    static int counter = 0;
    const auto stem = binary + "-" + std::to_string(++counter);
    log_file_ = work_dir / (stem + ".log");
    const auto port_file = work_dir / (stem + ".port");
    ChildProcess::Options options;
    options.argv = {bin_dir() + "/" + binary, "--listen-address", "127.0.0.1",       "--port",
                    std::to_string(port),     "--port-file",      port_file.string()};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.output_file = log_file_.string();
    process_ = std::make_unique<ChildProcess>(options);

    const bool listening = eventually([&] {
        std::ifstream in(port_file);
        return static_cast<bool>(in >> port_) || process_->poll().has_value();
    });
    if (!listening || process_->poll()) {
        throw std::runtime_error(binary + " did not start:\n" + output());
    }
    if (!eventually([&] {
            auto response = blocking_http(http::verb::get, url() + "/readyz", {}, {},
                                          std::chrono::milliseconds(500));
            return response && response.value().status == 200;
        })) {
        throw std::runtime_error(binary + " did not become ready:\n" + output());
    }
}

ServiceProcess::~ServiceProcess() {
    stop();
}

int ServiceProcess::stop() {
    return process_->stop(std::chrono::seconds(15));
}

std::string ServiceProcess::output() const {
    std::ifstream in(log_file_);
    return {std::istreambuf_iterator<char>(in), {}};
}

namespace {
ClientResponse checked(const Result<ClientResponse>& response, const std::string& what) {
    if (!response) {
        ADD_FAILURE() << what << ": " << response.error().message;
        return {};
    }
    return response.value();
}
}  // namespace

ClientResponse get(const std::string& url) {
    return checked(blocking_http(http::verb::get, url), "GET " + url);
}

ClientResponse post(const std::string& url, const std::string& body,
                    const std::string& content_type) {
    return checked(blocking_http(http::verb::post, url, body, content_type), "POST " + url);
}

std::string log_record_line(const std::string& record_id, const std::string& job_id,
                            std::int64_t a) {
    LogRecord record;
    record.record_id = record_id;
    record.input = {job_id, Operation::addition, a, 1};
    record.outcome = Outcome{a + 1, std::nullopt};
    record.identity = {"addition_worker", "test", "local", "test"};
    record.received_at = format_time(std::chrono::system_clock::now());
    record.completed_at = record.received_at;
    return log_line(record);
}

double metric(const std::string& text, const std::string& name) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind(name + " ", 0) == 0) {
            return std::stod(line.substr(name.size() + 1));
        }
    }
    return -1;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
}

unsigned short free_port() {
    net::io_context context;
    tcp::acceptor acceptor(context, {net::ip::make_address("127.0.0.1"), 0});
    return acceptor.local_endpoint().port();
}

}  // namespace calcmesh::testing
