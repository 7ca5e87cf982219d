#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace calcmesh {

/// The environment variable that sets a configuration key: "log-level" -> "CALCMESH_LOG_LEVEL".
std::string env_name(const std::string& key);

/// Builds a service's command line. Every key is a flag `--key` and an environment variable
/// `CALCMESH_KEY`; a flag wins over the variable. A key means the same thing in every binary.
class ConfigParser {
public:
    ConfigParser(std::string program, std::string description);

    /// Adds a key with a default already in `value`.
    template <class T>
    CLI::Option* add(const std::string& key, T& value, const std::string& help) {
        return app_.add_option("--" + key, value, help)->envname(env_name(key))->capture_default_str();
    }
    /// Adds a boolean key; "true"/"false" (or 1/0) in the environment.
    CLI::Option* add_switch(const std::string& key, bool& value, const std::string& help);

    /// Parses the command line and the environment. Returns an exit code when the program
    /// should stop now: after --help, after --print-config (which prints every key as
    /// KEY=value), or on a bad value (with a message naming the key).
    std::optional<int> parse(int argc, char** argv);

    CLI::App& app() { return app_; }

private:
    CLI::App app_;
    bool print_config_ = false;
};

}  // namespace calcmesh
