// The targets the coordinator may send webhooks to: "webhook_allow" in
// config.json (docs/coordinator.md "Webhook targets").
//
// Each entry is a URL prefix: http:// or https://, a host (and port), and a
// path ending in "/" ("https://hooks.example.org/", "https://ci.example/fabu/").
// Because an entry ends after the host with a "/", a target matches only on
// that exact scheme, host and port. A target is allowed when it starts with
// one entry; an empty list allows none, loopback included: an internal
// address is reachable only when the operator lists it. Pure; no I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::coordinator {

inline constexpr std::string_view kWebhookAllowKey = "webhook_allow";

// kInvalidArgument saying what an entry lacks.
Result<void> CheckWebhookAllowEntry(std::string_view entry);

// kPermissionDenied naming webhook_allow in config.json unless `url` starts
// with one of `allow` (and holds no "..", "\", space or control character).
Result<void> CheckWebhookTarget(std::string_view url, const std::vector<std::string>& allow);

}  // namespace fabu::coordinator
