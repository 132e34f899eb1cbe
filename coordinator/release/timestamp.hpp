// The release workflow speaks of instants and durations as the protocol
// defines them (protocol/timestamp.hpp); these names bring them in.
#pragma once

#include "protocol/timestamp.hpp"

namespace fabu::coordinator::release {

using protocol::FormatDuration;
using protocol::FormatRfc3339Utc;
using protocol::ParseDuration;
using protocol::ParseRfc3339;
using protocol::Timestamp;
using protocol::UnixSeconds;

}  // namespace fabu::coordinator::release
