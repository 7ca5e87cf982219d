#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "state.hpp"

namespace calcmesh::lab {

/// What `calcmesh lab fault` does to a running lab.
enum class FaultKind {
    partition,  ///< a cluster's pods and the other clusters' pods drop what comes from each other
    delay,      ///< what a cluster's pods send to the other clusters waits before it leaves
    kill,       ///< one service killed with SIGKILL; healing starts it again
};

struct FaultRequest {
    FaultKind kind = FaultKind::partition;
    std::string target;                     ///< a cluster, or the service to kill
    std::chrono::milliseconds delay{0};     ///< delay only
    std::chrono::milliseconds duration{0};  ///< heals itself after this; 0: until healed
};

/// Parses a duration given as "250ms", "10s", "2m" or plain milliseconds ("250"). Throws
/// std::invalid_argument naming `argument` unless it is a positive whole number of at most a day.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view argument);

/// Checks the request against the running lab, records the fault in the lab's state and then
/// makes it; if making it fails, undoes what was made and forgets it. With a duration, a timer
/// process (recorded in the state, so `down` ends it) heals the fault when it runs out. Throws
/// std::invalid_argument for a bad request (nothing changed) and std::runtime_error otherwise.
LabFault add_fault(const std::string& lab, const FaultRequest& request, std::ostream& log);

/// Removes the faults with these ids, or every fault if `ids` is empty: partitions and delays
/// are taken out of the pods, killed services started again. Returns what was healed. An unknown
/// id throws std::invalid_argument before anything is healed, unless `missing_ok` (a timer whose
/// fault was healed by hand in the meantime).
std::vector<LabFault> heal_faults(const std::string& lab, const std::vector<std::string>& ids,
                                  bool missing_ok, std::ostream& log);

/// One line per active fault: id, kind, target, since when and until when.
void print_faults(const LabState& state, std::ostream& out);

}  // namespace calcmesh::lab
