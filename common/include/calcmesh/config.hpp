#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace calcmesh {

/// The environment variable that sets a configuration key: "log-level" -> "CALCMESH_LOG_LEVEL".
std::string env_name(const std::string& key);

/// Builds a service's command line. Every key is a flag `--key` and an environment variable
/// `CALCMESH_KEY`; a flag wins over the variable. A key means the same thing in every binary.
class ConfigParser {
  public:
    ConfigParser(std::string program, std::string description);

    /// Adds a key with a default already in `value`. Booleans take true/false or 1/0.
    template <class T>
    CLI::Option* add(const std::string& key, T& value, const std::string& help) {
        printers_.emplace_back(env_name(key), [&value] {
            std::ostringstream out;
            out << std::boolalpha << value;
            return out.str();
        });
        return app_.add_option("--" + key, value, help)
            ->envname(env_name(key))
            ->capture_default_str();
    }

    /// Runs `step` after parsing, before --print-config: for defaults derived from other keys.
    void on_parsed(std::function<void()> step) { steps_.push_back(std::move(step)); }

    /// Parses the command line and the environment. Returns an exit code when the program
    /// should stop now: after --help, after --print-config (which prints every key's
    /// effective value as ENV_NAME=value, sorted), or on a bad value (naming the key).
    std::optional<int> parse(int argc, char** argv);

    CLI::App& app() { return app_; }

  private:
    CLI::App app_;
    bool print_config_ = false;
    std::vector<std::pair<std::string, std::function<std::string()>>> printers_;
    std::vector<std::function<void()>> steps_;
};

}  // namespace calcmesh
