#include "calcmesh/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <iostream>
#include <map>

namespace calcmesh {

std::string env_name(const std::string& key) {
    std::string name = "CALCMESH_";
    for (char c : key) {
        name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return name;
}

CLI::Validator whole_number_between(std::uint64_t min, std::uint64_t max) {
    const auto range = std::to_string(min) + " to " + std::to_string(max);
    return {
        [min, max, range](std::string& text) -> std::string {
            std::uint64_t value = 0;
            const char* end = text.data() + text.size();
            const auto [stop, error] = std::from_chars(text.data(), end, value);
            if (text.empty() || error != std::errc{} || stop != end || value < min || value > max) {
                return "expected a whole number from " + range + ", got '" + text + "'";
            }
            return {};
        },
        "UINT in [" + std::to_string(min) + " - " + std::to_string(max) + "]"};
}

ConfigParser::ConfigParser(std::string program, std::string description)
    : app_(std::move(description), std::move(program)) {
    app_.add_flag("--print-config", print_config_,
                  "Print every configuration key as ENV_NAME=value and exit");
    app_.get_formatter()->column_width(44);
}

std::optional<int> ConfigParser::parse(int argc, char** argv) {
    try {
        app_.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        return app_.exit(error);
    }
    for (const auto& step : steps_) {
        step();
    }
    if (print_config_) {
        std::map<std::string, std::string> keys;
        for (const auto& [name, print] : printers_) {
            keys[name] = print();
        }
        for (const auto& [name, value] : keys) {
            std::cout << name << '=' << value << '\n';
        }
        return 0;
    }
    return std::nullopt;
}

}  // namespace calcmesh
