// Telling systemd how the service is doing: the sd_notify(3) protocol
// (READY=1, WATCHDOG=1, STOPPING=1 as datagrams on $NOTIFY_SOCKET) and the
// watchdog interval systemd asks for ($WATCHDOG_USEC, for $WATCHDOG_PID).
//
// The protocol is documented as stable for reimplementation; the agent speaks
// it itself rather than linking libsystemd, which with its own dependencies
// (libgcrypt, libgpg-error, libcap, ...) cost about 0.7 MiB of resident
// memory in every idle agent. Outside systemd (no $NOTIFY_SOCKET) every call
// does nothing. Thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace fabu::agent {

// Sends `state` ("READY=1", ...) to systemd; false when not under systemd or
// the datagram could not be sent (never fatal: a service manager is optional).
bool NotifyServiceManager(std::string_view state);

// The watchdog interval systemd set for this process, if any.
std::optional<std::chrono::microseconds> ServiceWatchdogInterval();

}  // namespace fabu::agent
