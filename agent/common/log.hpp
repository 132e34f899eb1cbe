// The agent's log: one line per message on stderr, formatted with fmt.
//
// Lines read "2026-11-25 14:03:07.123 warning: text" on a terminal or in a
// file; under systemd (JOURNAL_STREAM set, stderr going to the journal) they
// carry the journal's "<N>" priority prefix instead of a time the journal
// records anyway. `debug` lines appear only with FABU_AGENT_LOG=debug.
//
// A deliberately small replacement for spdlog in the agent, which runs on
// every customer host: the shared library and its pages of code cost about
// half a MiB of resident memory in each idle agent. Thread-safe: one write(2)
// per line.
#pragma once

#include <fmt/format.h>

#include <string_view>
#include <utility>

namespace fabu::agent::log {

enum class Level { kDebug, kInfo, kWarning, kError };

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
