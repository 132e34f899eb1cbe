#include "platform/log/log.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace fabu::platform::log {
namespace {

thread_local Fields current;

void Merge(Fields& into, const Fields& from) {
  if (!from.release.empty()) into.release = from.release;
  if (!from.host.empty()) into.host = from.host;
  if (!from.request_id.empty()) into.request_id = from.request_id;
  if (!from.deployment.empty()) into.deployment = from.deployment;
}

}  // namespace

Result<Format> ParseFormat(std::string_view text) {
  if (text == "text") return Format::kText;
  if (text == "json") return Format::kJson;
  if (text == "journal") return Format::kJournal;
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("log format \"{}\" is not one of text, json, journal", text));
}

std::string_view FormatName(Format format) {
  switch (format) {
    case Format::kText:
      return "text";
    case Format::kJson:
      return "json";
    case Format::kJournal:
      return "journal";
  }
  return "text";
}

Format DefaultFormat() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return Format::kText;
  struct stat st {};
  if (::fstat(2, &st) != 0) return Format::kText;
  const std::string mine = fmt::format("{}:{}", st.st_dev, st.st_ino);
  return mine == stream ? Format::kJournal : Format::kText;
}

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
    case Level::kCritical:
      return 2;
  }
  return 6;
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
    case Level::kCritical:
      return "critical";
  }
  return "info";
}

const Fields& Current() { return current; }

Scope::Scope(const Fields& fields) : previous_(current) { Merge(current, fields); }

Scope::~Scope() { current = std::move(previous_); }

std::vector<std::string> JournalFields(std::string_view identifier, Level level,
                                       std::string_view message, const Fields& fields) {
  std::vector<std::string> out;
  out.reserve(7);
  out.push_back(fmt::format("MESSAGE={}", message));
  out.push_back(fmt::format("PRIORITY={}", Priority(level)));
  out.push_back(fmt::format("SYSLOG_IDENTIFIER={}", identifier));
  if (!fields.release.empty()) out.push_back("FABU_RELEASE=" + fields.release);
  if (!fields.host.empty()) out.push_back("FABU_HOST=" + fields.host);
  if (!fields.request_id.empty()) out.push_back("FABU_REQUEST_ID=" + fields.request_id);
  if (!fields.deployment.empty()) out.push_back("FABU_DEPLOYMENT=" + fields.deployment);
  return out;
}

std::string JsonLine(std::string_view time, std::string_view identifier, Level level,
                     std::string_view message, const Fields& fields) {
  nlohmann::ordered_json line = {
      {"time", time}, {"level", LevelName(level)}, {"service", identifier}, {"message", message}};
  if (!fields.release.empty()) line["release"] = fields.release;
  if (!fields.host.empty()) line["host"] = fields.host;
  if (!fields.request_id.empty()) line["request_id"] = fields.request_id;
  if (!fields.deployment.empty()) line["deployment"] = fields.deployment;
  // Ill-formed UTF-8 (a name a peer sent) becomes U+FFFD instead of throwing.
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string TextSuffix(const Fields& fields) {
  std::string out;
  if (!fields.release.empty()) out += " release=" + fields.release;
  if (!fields.host.empty()) out += " host=" + fields.host;
  if (!fields.request_id.empty()) out += " request_id=" + fields.request_id;
  if (!fields.deployment.empty()) out += " deployment=" + fields.deployment;
  return out;
}

std::string NowUtc() {
  using namespace std::chrono;
  const auto now = time_point_cast<milliseconds>(system_clock::now());
  const auto whole = time_point_cast<seconds>(now);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", whole, (now - whole).count());
}

bool SendToJournal(const std::vector<std::string>& fields) {
  std::vector<iovec> iov(fields.size());
  for (std::size_t i = 0; i < fields.size(); ++i) {
    iov[i].iov_base = const_cast<char*>(fields[i].data());
    iov[i].iov_len = fields[i].size();
  }
  return ::sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0;
}

}  // namespace fabu::platform::log
