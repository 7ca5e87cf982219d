#include "calcmesh/command.hpp"

#include <iostream>

namespace calcmesh {

namespace {
int command_exit_code = 0;

std::string command_path(const CLI::App& command) {
    std::string path = command.get_name();
    for (const auto* parent = command.get_parent(); parent != nullptr;
         parent = parent->get_parent()) {
        path = parent->get_name() + " " + path;
    }
    return path;
}
}  // namespace

CLI::App* add_command(CLI::App& parent, const std::string& name, const std::string& description,
                      std::function<int()> action) {
    auto* command = parent.add_subcommand(name, description);
    command->callback([command, action = std::move(action)] {
        try {
            command_exit_code = action();
        } catch (const std::exception& error) {
            std::cerr << command_path(*command) << ": " << error.what() << '\n';
            command_exit_code = 1;
        }
    });
    return command;
}

int run_commands(CLI::App& app, int argc, char** argv) {
    app.require_subcommand(1);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        return app.exit(error);
    } catch (const std::exception& error) {
        std::cerr << app.get_name() << ": " << error.what() << '\n';
        return 1;
    }
    return command_exit_code;
}

}  // namespace calcmesh
