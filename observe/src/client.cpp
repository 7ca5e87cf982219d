#include "client.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <stdexcept>

#include "calcmesh/lab/lab.hpp"
#include "socket_io.hpp"

namespace calcmesh::observe {

void ask_collector(const std::string& lab, const nlohmann::json& request,
                   const std::function<bool(const nlohmann::json&)>& on_line) {
    const auto path = lab::observer_socket(lab);
    if (!std::filesystem::exists(path)) {
        throw std::runtime_error(fmt::format(
            "lab '{}' has no flow collector ({} is missing): start the lab with `calcmesh lab "
            "up --name {}` (without --no-observe)",
            lab, path.string(), lab));
    }
    auto socket = LineSocket::connect_unix(path.string());
    if (!socket.write_line(request.dump())) {
        throw std::runtime_error("the flow collector closed the connection");
    }
    while (const auto line = socket.read_line()) {
        const auto json = nlohmann::json::parse(*line);
        if (json.contains("error")) {
            throw std::runtime_error("flow collector: " + json["error"].get<std::string>());
        }
        if (!on_line(json)) {
            return;
        }
    }
}

nlohmann::json ask_collector(const std::string& lab, const nlohmann::json& request) {
    nlohmann::json answer;
    ask_collector(lab, request, [&](const nlohmann::json& json) {
        answer = json;
        return false;
    });
    if (answer.is_null()) {
        throw std::runtime_error("the flow collector sent no answer");
    }
    return answer;
}

}  // namespace calcmesh::observe
