#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace calcmesh {

/// The environment variable that sets a configuration key: "log-level" -> "CALCMESH_LOG_LEVEL".
std::string env_name(const std::string& key);

/// Checks that an option's text is a whole number in [min, max], and otherwise says so and what
/// it got: CLI11's own Range and PositiveNumber take text that is no number for a value out of
/// a floating-point range, and print that range up to 1.8e308.
CLI::Validator whole_number_between(std::uint64_t min, std::uint64_t max);

/// The same, up to the largest value of the option's type by default.
template <class T>
CLI::Validator whole_number(T min, T max = std::numeric_limits<T>::max()) {
    static_assert(std::is_integral_v<T>, "whole_number checks integer options");
    return whole_number_between(static_cast<std::uint64_t>(min), static_cast<std::uint64_t>(max));
}

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
