#include "agent/common/log.hpp"

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <string>

#include "agent/common/utf8.hpp"
#include "platform/log/log.hpp"

namespace fabu::agent::log {

namespace {

struct Settings {
  // Set once by SetFormat before the agent's threads start.
  platform::log::Format format = platform::log::DefaultFormat();
  bool debug = [] {
    const char* level = std::getenv("FABU_AGENT_LOG");
    return level != nullptr && std::string_view(level) == "debug";
  }();
};

Settings& MutableSettings() {
  static Settings settings;
  return settings;
}

const Settings& GetSettings() { return MutableSettings(); }

platform::log::Level Structured(Level level) {
  switch (level) {
    case Level::kDebug:
      return platform::log::Level::kDebug;
    case Level::kInfo:
      return platform::log::Level::kInfo;
    case Level::kWarning:
      return platform::log::Level::kWarning;
    case Level::kError:
      return platform::log::Level::kError;
  }
  return platform::log::Level::kInfo;
}

constexpr std::string_view kIdentifier = "fabu-agent";

std::string_view Name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

// syslog priorities, as the journal reads them from a "<N>" prefix.
int Priority(Level level) {
  switch (level) {
    case Level::kDebug:
      return 7;
    case Level::kInfo:
      return 6;
    case Level::kWarning:
      return 4;
    case Level::kError:
      return 3;
  }
  return 6;
}

// One line per message, whatever it quotes: control characters (a newline
// in a name a coordinator sent, a terminal escape) are written as \xNN, and
// ill-formed UTF-8 as U+FFFD.
std::string Printable(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  for (char c : message) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      out.append(fmt::format("\\x{:02x}", byte));
    } else {
      out.push_back(c);
    }
  }
  return ValidUtf8(out);
}

}  // namespace

bool Enabled(Level level) { return level != Level::kDebug || GetSettings().debug; }

void SetFormat(platform::log::Format format) { MutableSettings().format = format; }

void Write(Level level, std::string_view message) {
  if (!Enabled(level)) return;
  using platform::log::Format;
  const platform::log::Fields& fields = platform::log::Current();
  const Format format = GetSettings().format;
  if (format == Format::kJournal &&
      platform::log::SendToJournal(platform::log::JournalFields(
          kIdentifier, Structured(level), ValidUtf8(std::string(message)), fields))) {
    return;
  }
  std::string line;
  if (format == Format::kJournal) {
    // The journal refused the entry: its stream still reads a "<N>" prefix.
    line = fmt::format("<{}>{}{}\n", Priority(level), Printable(message),
                       Printable(platform::log::TextSuffix(fields)));
  } else if (format == Format::kJson) {
    line = platform::log::JsonLine(platform::log::NowUtc(), kIdentifier, Structured(level),
                                   ValidUtf8(std::string(message)), fields) +
           "\n";
  } else {
    timeval now{};
    ::gettimeofday(&now, nullptr);
    std::tm local{};
    ::localtime_r(&now.tv_sec, &local);
    char stamp[32];
    const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &local);
    line =
        fmt::format("{}.{:03} {}: {}{}\n", std::string_view(stamp, n), now.tv_usec / 1000,
                    Name(level), Printable(message), Printable(platform::log::TextSuffix(fields)));
  }
  // One write per line, so lines of concurrent threads never interleave.
  std::string_view rest = line;
  while (!rest.empty()) {
    const ssize_t written = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
}

}  // namespace fabu::agent::log
