#include "calcmesh/config.hpp"

#include <algorithm>
#include <cctype>
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
