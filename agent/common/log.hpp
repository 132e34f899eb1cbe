// The agent's log: one entry per message, formatted with fmt, in the format
// of platform/log/log.hpp:
//
// - text: lines read "2026-11-25 14:03:07.123 warning: text host=web-1
//   release=R-7 deployment=D-12" on a terminal or in a file;
// - json: one JSON object a line on stderr;
// - journal (the default when stderr is the journal's stream, and what the
//   systemd unit asks for): journal entries with PRIORITY and FABU_HOST,
//   FABU_RELEASE, FABU_DEPLOYMENT (sd_journal_sendv), or "<N>"-prefixed
//   lines on stderr should the journal refuse one.
//
// The fields are those of the thread's platform::log::Scope: the runner
// opens one for the host and one per assignment. `debug` lines appear only
// with FABU_AGENT_LOG=debug.
//
// A deliberately small replacement for spdlog in the agent, which runs on
// every customer host: the shared library and its pages of code cost about
// half a MiB of resident memory in each idle agent. Thread-safe: one write(2)
// per line.
#pragma once

#include <fmt/format.h>

#include <string_view>
#include <utility>

#include "platform/log/log.hpp"

namespace fabu::agent::log {

enum class Level { kDebug, kInfo, kWarning, kError };

// Chooses the format (`fabu-agent run --log-format`); before other threads start.
void SetFormat(platform::log::Format format);

bool Enabled(Level level);
void Write(Level level, std::string_view message);

template <typename... Args>
void Debug(fmt::format_string<Args...> format, Args&&... args) {
  if (Enabled(Level::kDebug))
    Write(Level::kDebug, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void Info(fmt::format_string<Args...> format, Args&&... args) {
  Write(Level::kInfo, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void Warn(fmt::format_string<Args...> format, Args&&... args) {
  Write(Level::kWarning, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void Error(fmt::format_string<Args...> format, Args&&... args) {
  Write(Level::kError, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace fabu::agent::log
