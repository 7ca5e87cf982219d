#include "calcmesh/worker_urls.hpp"

#include <stdexcept>

namespace calcmesh {

namespace {
std::string url_key(Operation operation) {
    return std::string(operation_name(operation)) + "-worker-url";
}
}  // namespace

void WorkerUrls::add_to(ConfigParser& parser) {
    for (const auto operation : kAllOperations) {
        parser.add(url_key(operation), urls[static_cast<std::size_t>(operation)],
                   "Base URL of " + worker_name(operation));
    }
}

std::array<Url, 4> WorkerUrls::parse() const {
    std::array<Url, 4> parsed;
    for (const auto operation : kAllOperations) {
        const auto index = static_cast<std::size_t>(operation);
        auto url = parse_url(urls[index]);
        if (!url) {
            throw std::invalid_argument(url_key(operation) + ": " + url.error().message);
        }
        parsed[index] = url.value();
    }
    return parsed;
}

std::string worker_name(Operation operation) {
    return std::string(operation_name(operation)) + "_worker";
}

}  // namespace calcmesh
