#include "calcmesh/kube/calls.hpp"

#include <algorithm>
#include <charconv>

namespace calcmesh::kube {

namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        const auto end = text.find(separator, start);
        parts.push_back(text.substr(start, end - start));
        if (end == std::string_view::npos) {
            return parts;
        }
        start = end + 1;
    }
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && text.front() == ' ') {
        text.remove_prefix(1);
    }
    while (!text.empty() && text.back() == ' ') {
        text.remove_suffix(1);
    }
    return text;
}

Result<Address> parse_one(std::string_view text) {
    const std::string original(text);
    int default_port = 0;
    if (const auto scheme = text.find("://"); scheme != std::string_view::npos) {
        const auto name = text.substr(0, scheme);
        default_port = name == "http" ? 80 : name == "https" ? 443 : 0;
        text.remove_prefix(scheme + 3);
    }
    text = text.substr(0, text.find('/'));
    Address address;
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        address.host = std::string(text);
        address.port = default_port;
    } else {
        address.host = std::string(text.substr(0, colon));
        const auto digits = text.substr(colon + 1);
        const auto [end, error] =
            std::from_chars(digits.data(), digits.data() + digits.size(), address.port);
        if (error != std::errc() || end != digits.data() + digits.size()) {
            address.port = 0;
        }
    }
    if (address.host.empty() || address.port <= 0 || address.port > 65535) {
        return fail(ErrorCode::invalid_field, "'" + original + "' is not host:port or a URL");
    }
    return address;
}

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

Result<std::vector<Address>> parse_addresses(std::string_view text) {
    std::vector<Address> addresses;
    for (const auto part : split(text, ',')) {
        auto address = parse_one(trim(part));
        if (!address) {
            return address.error();
        }
        addresses.push_back(std::move(address).value());
    }
    return addresses;
}

std::optional<ServiceName> service_of_host(std::string_view host,
                                           std::string_view default_namespace) {
    if (host.empty() || std::isdigit(static_cast<unsigned char>(host.front())) != 0 ||
        host.find(':') != std::string_view::npos) {
        return std::nullopt;
    }
    if (host.back() == '.') {
        host.remove_suffix(1);
    }
    for (const std::string_view suffix : {".svc.cluster.local", ".svc"}) {
        if (ends_with(host, suffix)) {
            const auto parts = split(host.substr(0, host.size() - suffix.size()), '.');
            if (parts.size() == 2) {
                return ServiceName{std::string(parts[1]), std::string(parts[0])};
            }
            if (parts.size() == 3) {  // pod.service.namespace of a headless Service
                return ServiceName{std::string(parts[2]), std::string(parts[1])};
            }
            return std::nullopt;
        }
    }
    const auto parts = split(host, '.');
    if (parts.size() == 1) {
        return ServiceName{std::string(default_namespace), std::string(parts[0])};
    }
    if (parts.size() == 2) {
        return ServiceName{std::string(parts[1]), std::string(parts[0])};
    }
    return std::nullopt;
}

bool is_call_variable(std::string_view name) {
    return ends_with(name, "_URL") || ends_with(name, "_BOOTSTRAP_SERVERS");
}

bool is_advertised_variable(std::string_view name) {
    return name == "KAFKA_ADVERTISED_LISTENERS";
}

Result<std::vector<Call>> find_calls(const Cluster& cluster, bool (*select)(std::string_view)) {
    std::vector<Call> calls;
    for (const Workload& workload : cluster.workloads) {
        for (const auto* containers : {&workload.init_containers, &workload.containers}) {
            for (const Container& container : *containers) {
                auto environment = resolve_environment(cluster, workload, container);
                if (!environment) {
                    return environment.error();
                }
                for (const ResolvedVar& var : environment.value()) {
                    if (!select(var.name) || !var.value || var.value->empty()) {
                        continue;
                    }
                    auto addresses = parse_addresses(*var.value);
                    if (!addresses) {
                        return fail(ErrorCode::invalid_field,
                                    var.source + ": " + addresses.error().message, var.name);
                    }
                    for (Address& address : addresses.value()) {
                        Call call{&workload, &container, var.name, var.source, address, {}};
                        call.service = service_of_host(address.host, workload.id.namespace_);
                        calls.push_back(std::move(call));
                    }
                }
            }
        }
    }
    return calls;
}

}  // namespace calcmesh::kube
