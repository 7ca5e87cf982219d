#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "calcmesh/blocking_http.hpp"
#include "calcmesh/process.hpp"

namespace calcmesh::testing {

/// The folder of the built binaries.
std::string bin_dir();

/// How many times slower than a release build the binaries under test run:
/// CALCMESH_TEST_TIME_SCALE, which scripts/sanitize sets for its instrumented builds; 1 unset.
/// Bounds that a slowed service would miss, though it works, are multiplied by it.
unsigned time_scale();

/// A fresh directory under the system temp folder, removed with everything in it at the end.
class TempDir {
  public:
    explicit TempDir(const std::string& name);
    ~TempDir();
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

/// A calcmesh service binary run for a test: on 127.0.0.1 and a free port (or a given one,
/// to restart a service where its clients expect it), with its output in a log file.
/// The constructor returns once `/readyz` answers; the destructor stops the process.
class ServiceProcess {
  public:
    ServiceProcess(const std::string& binary, std::vector<std::string> args,
                   const std::filesystem::path& work_dir, unsigned short port = 0);
    ~ServiceProcess();

    unsigned short port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    pid_t pid() const { return process_->pid(); }
    /// SIGTERM and wait; returns the wait status.
    int stop();
    /// Everything the process printed so far.
    std::string output() const;

  private:
    std::filesystem::path log_file_;
    std::unique_ptr<ChildProcess> process_;
    unsigned short port_ = 0;
};

/// HTTP helpers that fail the test on transport errors.
ClientResponse get(const std::string& url);
ClientResponse post(const std::string& url, const std::string& body,
                    const std::string& content_type = "application/json");

/// A log record line as a worker sends it to `/save_log`: job `job_id` computed a + 1.
std::string log_record_line(const std::string& record_id, const std::string& job_id,
                            std::int64_t a);

/// The value of an unlabelled counter or gauge in Prometheus text, or -1.
double metric(const std::string& text, const std::string& name);

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// A TCP port that was free a moment ago.
unsigned short free_port();

}  // namespace calcmesh::testing
