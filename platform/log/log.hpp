// A log line and its fields, written the way the operator chose:
//
// - text: "2026-12-05T19:12:13.123 info message release=R-7 host=web-1" on
//   stderr, readable on a terminal or in a file (the daemons' default outside
//   systemd);
// - json: one JSON object a line on stderr, {"time", "level", "message",
//   "service", and the fields that are set: "release", "host",
//   "request_id", "deployment"}, for log shippers;
// - journal: one journal entry per line through libsystemd
//   (sd_journal_sendv) with PRIORITY (syslog's 0-7), SYSLOG_IDENTIFIER and
//   the fields as FABU_RELEASE=, FABU_HOST=, FABU_REQUEST_ID=,
//   FABU_DEPLOYMENT=, so `journalctl FABU_RELEASE=R-7` shows one release
//   across the coordinator (the agent does not use this library yet).
//
// The fields come from a Scope: a request, a rollout step or a
// deployment opens one (`log::Scope scope(log::Fields().Release(id));`) and
// every line the thread writes until it closes carries them, so call sites
// stay short.
// Scopes nest; a field left empty keeps the outer scope's value. They are per
// thread: code that moves between threads (a coroutine on the I/O thread)
// opens its scope around the lines it writes, not across a suspension.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::platform::log {

enum class Format { kText, kJson, kJournal };

// "text", "json" or "journal"; kInvalidArgument naming the value otherwise.
Result<Format> ParseFormat(std::string_view text);
std::string_view FormatName(Format format);

// kJournal when stderr is the journal's stream (systemd sets JOURNAL_STREAM
// to the device and inode of the service's stdout/stderr), else kText.
Format DefaultFormat();

enum class Level { kDebug, kInfo, kWarning, kError, kCritical };

// syslog's priority of `level` (7 debug ... 2 critical), as the journal reads it.
int Priority(Level level);
// "debug", "info", "warning", "error", "critical".
std::string_view LevelName(Level level);

struct Fields {
  std::string release;     // a release id, "R-7"
  std::string host;        // a host's name
  std::string request_id;  // the X-Request-Id of a coordinator request
  std::string deployment;  // a deployment id

  // Chained setters: `Scope scope(Fields().Release(id).Host(name));`.
  Fields& Release(std::string value) {
    release = std::move(value);
    return *this;
  }
  Fields& Host(std::string value) {
    host = std::move(value);
    return *this;
  }
  Fields& RequestId(std::string value) {
    request_id = std::move(value);
    return *this;
  }
  Fields& Deployment(std::string value) {
    deployment = std::move(value);
    return *this;
  }
};

// The fields of this thread's open scopes.
const Fields& Current();

// Adds `fields` (those not empty) to this thread's lines until destroyed.
class Scope {
 public:
  explicit Scope(const Fields& fields);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Fields previous_;
};

// One entry's journal fields, "NAME=value": MESSAGE, PRIORITY,
// SYSLOG_IDENTIFIER and each FABU_* field that is set.
std::vector<std::string> JournalFields(std::string_view identifier, Level level,
                                       std::string_view message, const Fields& fields);

// One JSON line (no newline at its end; newlines in values are escaped).
// `time` is written as given (RFC 3339, UTC).
std::string JsonLine(std::string_view time, std::string_view identifier, Level level,
                     std::string_view message, const Fields& fields);

// " release=R-7 host=web-1 request_id=... deployment=...": the fields that are
// set, for the end of a text line ("" when none).
std::string TextSuffix(const Fields& fields);

// The current time as RFC 3339 UTC with milliseconds: "2026-12-05T19:12:13.123Z".
std::string NowUtc();

// Sends one entry to the journal; false when the journal did not take it
// (the caller then writes the line to stderr).
bool SendToJournal(const std::vector<std::string>& fields);

}  // namespace fabu::platform::log
