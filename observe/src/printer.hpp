#pragma once

#include <string>

#include "flow.hpp"

namespace calcmesh::observe {

/// One line in the style of `hubble observe` (compact output), with the cluster of each side:
/// `TIME: SOURCE (ID) -> DESTINATION (ID) TYPE VERDICT (SUMMARY)`. Replies show the client
/// first with `<-`, as Hubble does; `node_name` adds `[cluster/node]` after the time.
std::string compact_line(const Flow& flow, bool node_name);

/// `EVENTS LOST: SOURCE COUNT ...`, as Hubble reports a loss.
std::string compact_line(const LostEvents& lost);

}  // namespace calcmesh::observe
