// fabu-coordinator's log: spdlog's default logger, writing each line in the
// format the operator chose (platform/log/log.hpp): text on stderr (with
// colours on a terminal), JSON lines on stderr, or journal entries with
// PRIORITY and the FABU_* fields of the line's scope
// (platform::log::Scope). Level from FABU_LOG_LEVEL (debug, info, warn,
// error; info by default).
#pragma once

#include "platform/log/log.hpp"

namespace fabu::coordinator {

// Installs the default logger for `format`; call again to change it.
void SetUpLogging(platform::log::Format format);

}  // namespace fabu::coordinator
