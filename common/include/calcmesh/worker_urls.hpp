#pragma once

#include <array>
#include <string>

#include "calcmesh/arithmetic.hpp"
#include "calcmesh/config.hpp"
#include "calcmesh/http.hpp"

namespace calcmesh {

/// Where each worker answers over HTTP: the keys addition-worker-url ... division-worker-url,
/// shared by job_submitter and help_page so one setting serves both.
struct WorkerUrls {
    std::array<std::string, 4> urls = {"http://127.0.0.1:8091", "http://127.0.0.1:8092",
                                       "http://127.0.0.1:8093", "http://127.0.0.1:8094"};

    void add_to(ConfigParser& parser);
    /// The parsed URLs, indexed by operation. Throws std::invalid_argument naming the key.
    std::array<Url, 4> parse() const;
};

/// "addition_worker" and so on: how a worker is named in messages and pages.
std::string worker_name(Operation operation);

}  // namespace calcmesh
