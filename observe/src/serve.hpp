#pragma once

#include <functional>
#include <string>

namespace calcmesh::observe {

struct ServeOptions {
    std::string lab;
    std::string address = "127.0.0.1";
    unsigned short port = 12000;  ///< Hubble UI's port; 0 picks a free one
};

/// Serves the live service map of a lab until SIGINT or SIGTERM: `/` is a page that redraws the
/// map and the latest flows every two seconds, `/map.svg` the map, `/flows` the latest flows as
/// JSON. `on_listening` gets the URL once the port is bound. Returns the exit code.
int run_serve(const ServeOptions& options,
              const std::function<void(const std::string&)>& on_listening);

}  // namespace calcmesh::observe
