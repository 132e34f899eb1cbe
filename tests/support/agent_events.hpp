// The events a test host posts when it plays an agent whose deployment
// succeeds: every step from assigned to succeeded, numbered from 1, for the
// assignment the coordinator handed it (protocol/deployment_event.hpp).
#pragma once

#include <nlohmann/json.hpp>

namespace fabu::testing {

// {"events": [...]} for POST /api/v1/agent/events.
inline nlohmann::json SucceededEvents(const nlohmann::json& assignment) {
  nlohmann::json events = nlohmann::json::array();
  int sequence = 0;
  for (const char* step : {"assigned", "downloading", "downloaded", "verified", "installing",
                           "activating", "health_checking", "succeeded"}) {
    events.push_back({{"deployment", assignment["deployment"]},
                      {"sequence", ++sequence},
                      {"step", step},
                      {"app", assignment.value("app", "")},
                      {"version", assignment.value("version", "")},
                      {"message", ""},
                      {"output", ""},
                      {"time", "2026-11-20T00:00:00Z"}});
  }
  return nlohmann::json{{"events", events}};
}

}  // namespace fabu::testing
