#include "agent/journal/journal.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "platform/fs/files.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kJournalFormat = 1;

json InFlightToJson(const InFlightDeployment& d) {
  json j = {
      {"deployment", d.deployment},
      {"kind", DeploymentKindName(d.kind)},
      {"package", d.package},
      {"package_sha256", d.package_sha256},
      {"app", d.app},
      {"version", d.version},
      {"step", StepName(d.step)},
      {"next_sequence", d.next_sequence},
  };
  if (d.previous_version) j["previous_version"] = *d.previous_version;
  if (d.failed_step) j["failed_step"] = StepName(*d.failed_step);
  return j;
}

Result<Step> StepField(const json& j, const char* field) {
  auto step = ParseStep(j.at(field).get<std::string>());
  if (!step) return std::unexpected(step.error().WithContext(field));
  return step;
}

Result<InFlightDeployment> InFlightFromJson(const json& j) {
  InFlightDeployment d;
  d.deployment = j.at("deployment").get<std::string>();
  auto kind = ParseDeploymentKind(j.at("kind").get<std::string>());
  if (!kind) return std::unexpected(kind.error().WithContext("kind"));
  d.kind = *kind;
  d.package = j.at("package").get<std::string>();
  d.package_sha256 = j.at("package_sha256").get<std::string>();
  d.app = j.at("app").get<std::string>();
  d.version = j.at("version").get<std::string>();
  if (j.contains("previous_version"))
    d.previous_version = j.at("previous_version").get<std::string>();
  auto step = StepField(j, "step");
  if (!step) return std::unexpected(step.error());
  d.step = *step;
  if (j.contains("failed_step")) {
    auto failed = StepField(j, "failed_step");
    if (!failed) return std::unexpected(failed.error());
    d.failed_step = *failed;
  }
  const json& next = j.at("next_sequence");
  if (!next.is_number_unsigned()) {
    return Fail(ErrorCode::kInvalidArgument, "next_sequence: must be a whole number, 0 or more");
  }
  d.next_sequence = next.get<std::uint64_t>();
  return d;
}

json FinishedToJson(const FinishedDeployment& d) {
  json j = {{"deployment", d.deployment},
            {"kind", DeploymentKindName(d.kind)},
            {"app", d.app},
            {"outcome", StepName(d.outcome)}};
  if (d.current_version) j["current_version"] = *d.current_version;
  j["last_sequence"] = d.last_sequence;
  return j;
}

Result<FinishedDeployment> FinishedFromJson(const json& j) {
  FinishedDeployment d;
  d.deployment = j.at("deployment").get<std::string>();
  auto kind = ParseDeploymentKind(j.at("kind").get<std::string>());
  if (!kind) return std::unexpected(kind.error().WithContext("kind"));
  d.kind = *kind;
  d.app = j.at("app").get<std::string>();
  auto outcome = StepField(j, "outcome");
  if (!outcome) return std::unexpected(outcome.error());
  d.outcome = *outcome;
  if (j.contains("current_version")) d.current_version = j.at("current_version").get<std::string>();
  d.last_sequence = j.value("last_sequence", std::uint64_t{0});
  return d;
}

}  // namespace

Journal::Journal(fs::path path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}

Journal::Journal(Journal&& other) noexcept
    : path_(std::move(other.path_)),
      lock_fd_(other.lock_fd_),
      state_(std::move(other.state_)),
      unwritten_acks_(other.unwritten_acks_) {
  other.lock_fd_ = -1;
}

Journal::~Journal() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<Journal> Journal::Open(const fs::path& data_dir) {
  if (auto ok = platform::MakeDirectories(data_dir); !ok) return std::unexpected(ok.error());
  const fs::path lock_path = data_dir / kLockName;
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot open {}: {}", lock_path.string(), std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Fail(ErrorCode::kConflict,
                  fmt::format("another fabu-agent is using the data directory {}; run one agent "
                              "per data directory",
                              data_dir.string()));
    }
    return Fail(ErrorCode::kIo,
                fmt::format("cannot lock {}: {}", lock_path.string(), std::strerror(err)));
  }
  Journal journal(data_dir / kFileName, fd);
  if (auto ok = journal.Load(); !ok) return std::unexpected(ok.error());
  return journal;
}

Result<void> Journal::Load() {
  std::error_code ec;
  if (!fs::exists(path_, ec)) return {};
  auto text = platform::ReadWholeFile(path_);
  if (!text) return std::unexpected(text.error());
  auto fail = [&](std::string what) -> Result<void> {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("journal {} is damaged: {}; the agent cannot tell what was in "
                            "flight (inspect the file, then move it away to start afresh)",
                            path_.string(), what));
  };
  try {
    const json j = json::parse(*text);
    if (j.at("format").get<int>() != kJournalFormat) {
      return fail(fmt::format("format {} is not {}", j.at("format").dump(), kJournalFormat));
    }
    State state;
    if (j.contains("in_flight")) {
      auto d = InFlightFromJson(j.at("in_flight"));
      if (!d) return fail("in_flight." + d.error().message());
      state.in_flight = std::move(*d);
    }
    std::size_t i = 0;
    for (const auto& e : j.at("events")) {
      auto event = EventFromJson(e);
      if (!event) return fail(fmt::format("events[{}].{}", i, event.error().message()));
      state.events.push_back(std::move(*event));
      ++i;
    }
    if (j.contains("last")) {
      auto d = FinishedFromJson(j.at("last"));
      if (!d) return fail("last." + d.error().message());
      state.last = std::move(*d);
    }
    state_ = std::move(state);
  } catch (const json::exception& e) {
    return fail(ExceptionReason(e));
  }
  return {};
}

std::string Journal::Serialize(const State& state) {
  json j = {{"format", kJournalFormat}, {"events", json::array()}};
  if (state.in_flight) j["in_flight"] = InFlightToJson(*state.in_flight);
  for (const auto& e : state.events) j["events"].push_back(EventToJson(e));
  if (state.last) j["last"] = FinishedToJson(*state.last);
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string Journal::Serialize() const { return Serialize(state_); }

Result<void> Journal::Commit(State next) {
  if (auto ok = platform::WriteFileDurably(path_, Serialize(next)); !ok) {
    return std::unexpected(ok.error().WithContext("writing the agent journal"));
  }
  state_ = std::move(next);
  unwritten_acks_ = false;
  return {};
}

Result<void> Journal::Begin(const InFlightDeployment& deployment, const DeploymentEvent& event) {
  if (state_.in_flight) {
    return Fail(ErrorCode::kConflict,
                fmt::format("deployment {} is still in flight; recover it first",
                            state_.in_flight->deployment));
  }
  State next = state_;
  next.in_flight = deployment;
  next.in_flight->next_sequence = event.sequence + 1;
  next.events.push_back(event);
  return Commit(std::move(next));
}

Result<void> Journal::Record(Step step, const std::optional<DeploymentEvent>& event,
                             std::optional<Step> failed_step) {
  if (!state_.in_flight) {
    return Fail(ErrorCode::kInternal, "journal: no deployment in flight to record a step of");
  }
  State next = state_;
  next.in_flight->step = step;
  if (failed_step) next.in_flight->failed_step = failed_step;
  if (event) {
    next.in_flight->next_sequence = event->sequence + 1;
    next.events.push_back(*event);
  }
  return Commit(std::move(next));
}

Result<void> Journal::Append(const DeploymentEvent& event) {
  State next = state_;
  next.events.push_back(event);
  return Commit(std::move(next));
}

std::uint64_t Journal::NextSequence(std::string_view deployment) const {
  std::uint64_t last = 0;
  if (state_.in_flight && state_.in_flight->deployment == deployment) {
    last = state_.in_flight->next_sequence - 1;
  }
  if (state_.last && state_.last->deployment == deployment) {
    last = std::max(last, state_.last->last_sequence);
  }
  for (const auto& e : state_.events) {
    if (e.deployment == deployment) last = std::max(last, e.sequence);
  }
  return last + 1;
}

Result<void> Journal::Finish(const FinishedDeployment& summary) {
  State next = state_;
  next.last = summary;
  next.last->last_sequence = NextSequence(summary.deployment) - 1;
  next.in_flight.reset();
  return Commit(std::move(next));
}

Result<void> Journal::Acknowledge(std::string_view deployment, std::uint64_t through) {
  State next = state_;
  std::erase_if(next.events, [&](const DeploymentEvent& e) {
    return e.deployment == deployment && e.sequence <= through;
  });
  if (next.events.size() == state_.events.size()) return {};
  // Not written now: the next write carries it (see the header).
  state_ = std::move(next);
  unwritten_acks_ = true;
  return {};
}

Result<void> Journal::WriteAcknowledged() {
  if (!unwritten_acks_) return {};
  return Commit(state_);
}

}  // namespace fabu::agent
