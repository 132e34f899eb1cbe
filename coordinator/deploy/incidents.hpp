// Incidents the deployment side records by itself (an observation that
// failed after a host's health check had passed); people add theirs through
// `fabu incident add` (coordinator/records/records_store.hpp).
#pragma once

#include <string>
#include <string_view>

#include "coordinator/store/store.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

inline constexpr std::string_view kObservationSeverity = "P3";
inline constexpr std::string_view kIncidentFromObservation = "observation";

// Adds an incident against a release (audited "incident.create"); returns its id.
std::string RecordIncident(Transaction& tx, const std::string& release_id, const std::string& host,
                           std::string_view severity, const std::string& summary,
                           std::string_view source, protocol::UnixSeconds now);

}  // namespace fabu::coordinator
