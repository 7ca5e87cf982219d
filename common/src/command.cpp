#include "calcmesh/command.hpp"

#include <iostream>

namespace calcmesh {

namespace {
int command_exit_code = 0;
}

CLI::App* add_command(CLI::App& parent, const std::string& name, const std::string& description,
                      std::function<int()> action) {
    auto* command = parent.add_subcommand(name, description);
    command->callback([action = std::move(action)] { command_exit_code = action(); });
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
