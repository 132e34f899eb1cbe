#include "coordinator/daemon/logging.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace fabu::coordinator {
namespace {

namespace plog = platform::log;

constexpr std::string_view kIdentifier = "fabu-coordinator";
// Where journald takes entries (its native protocol).
constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

plog::Level LevelOf(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return plog::Level::kDebug;
    case spdlog::level::warn:
      return plog::Level::kWarning;
    case spdlog::level::err:
      return plog::Level::kError;
    case spdlog::level::critical:
      return plog::Level::kCritical;
    default:
      return plog::Level::kInfo;
  }
}

// `%*` in a text pattern: the fields of the line's scope (" release=R-7 ...").
class FieldsFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string suffix = plog::TextSuffix(plog::Current());
    dest.append(suffix.data(), suffix.data() + suffix.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<FieldsFlag>();
  }
};

void WriteAll(std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(2, text.data(), text.size());
    if (n <= 0) return;  // nowhere left to say it
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// JSON lines on stderr, or journal entries ("<N>" lines on stderr when the
// journal refuses one).
class StructuredSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit StructuredSink(bool journal) : journal_(journal) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view message(msg.payload.data(), msg.payload.size());
    const plog::Level level = LevelOf(msg.level);
    if (journal_) {
      if (plog::SendToJournal(plog::JournalFields(kIdentifier, level, message, plog::Current()))) {
        return;
      }
      // The journal refused the entry: its stream still reads a "<N>" prefix.
      WriteAll(fmt::format("<{}>{}{}\n", plog::Priority(level), message,
                           plog::TextSuffix(plog::Current())));
      return;
    }
    using namespace std::chrono;
    const auto at = time_point_cast<milliseconds>(msg.time);
    const auto whole = time_point_cast<seconds>(at);
    const std::string time =
        fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", whole, (at - whole).count());
    WriteAll(plog::JsonLine(time, kIdentifier, level, message, plog::Current()) + "\n");
  }
  void flush_() override {}

 private:
  bool journal_;
};

}  // namespace

void SetUpLogging(plog::Format format) {
  // libsystemd drops entries silently when no journald listens: say so once
  // and write text lines instead of losing them.
  bool no_journal = false;
  if (format == plog::Format::kJournal) {
    std::error_code ec;
    no_journal = !std::filesystem::exists(kJournalSocket, ec);
    if (no_journal) format = plog::Format::kText;
  }
  std::shared_ptr<spdlog::logger> logger;
  if (format == plog::Format::kText) {
    logger = std::make_shared<spdlog::logger>(
        std::string(kIdentifier), std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<FieldsFlag>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v%*");
    logger->set_formatter(std::move(formatter));
  } else {
    logger = std::make_shared<spdlog::logger>(
        std::string(kIdentifier),
        std::make_shared<StructuredSink>(format == plog::Format::kJournal));
  }
  logger->set_level(spdlog::level::info);
  // FABU_LOG_LEVEL=debug|info|warn|error (default info).
  if (const char* level = std::getenv("FABU_LOG_LEVEL"); level != nullptr) {
    logger->set_level(spdlog::level::from_str(level));
  }
  spdlog::set_default_logger(std::move(logger));
  if (no_journal) {
    spdlog::warn(
        "log format journal: no journal here ({} is missing); writing text lines on stderr",
        kJournalSocket);
  }
}

}  // namespace fabu::coordinator
