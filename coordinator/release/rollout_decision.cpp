#include "coordinator/release/rollout_decision.hpp"

#include <fmt/format.h>

namespace fabu::coordinator::release {
namespace {

using Kind = RolloutDecision::Kind;

std::string WindowText(const MaintenanceWindow& window) {
  return fmt::format("{} .. {}", window.start.text, window.end.text);
}

// Why no wave may start now ("" when one may): the window and the freezes.
// Sets `pause_kind` when the reason pauses the rollout (a window that closed,
// a freeze); a window not open yet only makes it wait.
std::string Blocker(const RolloutSnapshot& s, std::string& pause_kind) {
  pause_kind.clear();
  if (s.window && s.now >= s.window->end.seconds) {
    pause_kind = kPausedByWindow;
    return fmt::format(
        "the go-live window {} closed; schedule a new one with `fabu release "
        "reschedule {} --start T --end T`",
        WindowText(*s.window), s.release_id);
  }
  if (s.window && s.now < s.window->start.seconds) {
    return fmt::format("waiting for the go-live window to open at {}", s.window->start.text);
  }
  if (!s.freeze_override && s.freeze) {
    pause_kind = kPausedByFreeze;
    return fmt::format("freeze {} ({}) until {}", s.freeze->id, s.freeze->reason, s.freeze->until);
  }
  return "";
}

RolloutDecision Pause(std::string blocker, std::string pause_kind) {
  RolloutDecision d;
  d.kind = Kind::kPause;
  d.reason = blocker;
  d.waiting = std::move(blocker);
  d.pause_kind = std::move(pause_kind);
  return d;
}

RolloutDecision DecidePaused(const RolloutSnapshot& s) {
  RolloutDecision d;
  if (s.pause_kind != kPausedByWindow && s.pause_kind != kPausedByFreeze) return d;  // a person's
  std::string pause_kind;
  std::string blocker = Blocker(s, pause_kind);
  if (!blocker.empty()) {
    d.kind = Kind::kWait;
    d.waiting = std::move(blocker);
    return d;
  }
  d.kind = Kind::kResume;
  d.reason =
      s.pause_kind == kPausedByWindow ? "the go-live window is open" : "no freeze applies any more";
  return d;
}

// The current wave's checks on metrics, once its hosts are final within
// their threshold: nothing when they let the rollout go on, else what it
// does (`so_far` carries the wave's end and threshold into it).
std::optional<RolloutDecision> DecideChecks(const RolloutSnapshot& s,
                                            const RolloutDecision& so_far) {
  const auto carried = [&](RolloutDecision d) {
    d.wave_done = so_far.wave_done;
    d.assigning_over = so_far.assigning_over;
    d.threshold = so_far.threshold;
    return d;
  };
  const std::string wave = fmt::format("wave {} of {}", s.current_wave + 1, s.wave_count());
  for (const WaveCheck& c : s.checks) {
    if (c.check.dry_run || c.verdict.state != CheckVerdict::State::kFailed) continue;
    const std::string reason =
        fmt::format("{}: check {} failed: {}", wave, c.check.name, c.verdict.summary);
    RolloutDecision d;
    if (s.golive.auto_rollback) {
      d.kind = Kind::kRollBack;
      d.reason = reason + "; auto_rollback";
      return carried(std::move(d));
    }
    d.kind = Kind::kHalt;
    d.outcome = s.outcome;
    d.outcome.halted = true;
    d.outcome.reason = reason + "; waiting for `fabu release rollback` or `fabu release resume`";
    d.waiting = d.outcome.reason;
    return carried(std::move(d));
  }
  for (const WaveCheck& c : s.checks) {
    if (c.check.dry_run || c.verdict.state != CheckVerdict::State::kInconclusive) continue;
    return carried(Pause(
        fmt::format("{}: check {} inconclusive: {}; `fabu release resume {}` goes on without it, "
                    "`fabu release rollback {}` backs the release out",
                    wave, c.check.name, c.verdict.summary, s.release_id, s.release_id),
        std::string(kPausedByCheck)));
  }
  for (const WaveCheck& c : s.checks) {
    if (c.check.dry_run || c.verdict.state != CheckVerdict::State::kMeasuring) continue;
    RolloutDecision d;
    d.kind = Kind::kWait;
    d.waiting = fmt::format("{}: check {}: {}; next measurement at {}", wave, c.check.name,
                            c.verdict.summary, protocol::FormatRfc3339Utc(c.next_at));
    return carried(std::move(d));
  }
  if (s.checks.size() < s.golive.checks.size()) {
    // The wave ended just now: its checks have not been loaded yet.
    for (const MetricCheck& check : s.golive.checks) {
      if (check.dry_run) continue;
      RolloutDecision d;
      d.kind = Kind::kWait;
      d.waiting = fmt::format("{}: check {}: first measurement at {}", wave, check.name,
                              protocol::FormatRfc3339Utc(s.now + check.interval_seconds));
      return carried(std::move(d));
    }
  }
  return std::nullopt;
}

RolloutDecision DecideDeploying(const RolloutSnapshot& s) {
  RolloutDecision d;
  UnixSeconds wave_done_at = s.wave_done_at;
  if (s.current_wave >= 0) {
    const WaveTally& w = s.wave;
    if (w.assigned < w.hosts && !s.aborted) {
      // The current wave's next part, unless its window closed or a freeze
      // on its hosts began since the part before.
      std::string pause_kind;
      std::string blocker = Blocker(s, pause_kind);
      if (!pause_kind.empty()) return Pause(std::move(blocker), std::move(pause_kind));
      d.kind = Kind::kAssign;
      d.wave = s.current_wave;
      return d;
    }
    d.assigning_over = true;
    if (w.final < w.assigned) {
      d.kind = Kind::kWait;
      d.waiting = fmt::format("wave {} of {}: {} of {} host(s) final", s.current_wave + 1,
                              s.wave_count(), w.final, w.hosts);
      return d;
    }
    const std::uint64_t threshold =
        s.waves.at(static_cast<std::size_t>(s.current_wave)).max_failures;
    d.threshold = threshold;
    if (w.failed > threshold && s.accepted_wave < s.current_wave) {
      const std::string reason = fmt::format(
          "wave {} of {}: {} of {} host(s) failed, over max_failures {} ({} "
          "tolerated in this wave)",
          s.current_wave + 1, s.wave_count(), w.failed, w.hosts, s.golive.max_failures.ToString(),
          threshold);
      if (s.golive.auto_rollback) {
        d.kind = Kind::kRollBack;
        d.reason = reason + "; auto_rollback";
        return d;
      }
      d.kind = Kind::kHalt;
      d.outcome = s.outcome;
      d.outcome.halted = true;
      d.outcome.reason = reason + "; waiting for `fabu release rollback` or `fabu release resume`";
      d.waiting = d.outcome.reason;
      return d;
    }
    if (wave_done_at == 0) {
      d.wave_done = true;
      wave_done_at = s.now;
    }
    if (!s.aborted && s.accepted_wave < s.current_wave) {
      std::optional<RolloutDecision> held = DecideChecks(s, d);
      if (held) return *held;
    }
  }
  const bool last_wave_started =
      s.current_wave >= 0 && static_cast<std::size_t>(s.current_wave) + 1 >= s.wave_count();
  if (s.aborted || last_wave_started) {
    // Hosts of earlier waves deployed again after the rollout had ended
    // (`release retry` of a deployed release) end before it does.
    if (const std::size_t final = s.outcome.succeeded + s.outcome.failed; final < s.outcome.hosts) {
      d.kind = Kind::kWait;
      d.waiting = fmt::format("{} of {} host(s) final", final, s.outcome.hosts);
      return d;
    }
    d.kind = Kind::kFinish;
    d.outcome = s.outcome;
    if (s.aborted && s.outcome.hosts < s.targets) {
      d.outcome.halted = true;
      d.outcome.reason =
          fmt::format("aborted: {} host(s) never assigned", s.targets - s.outcome.hosts);
    }
    return d;
  }
  const long long next = s.current_wave + 1;
  // A closed window or a freeze pauses the rollout at once, even between
  // waves: nothing more may start until it is lifted.
  std::string pause_kind;
  std::string blocker = Blocker(s, pause_kind);
  if (!pause_kind.empty()) {
    RolloutDecision pause = Pause(std::move(blocker), std::move(pause_kind));
    pause.wave_done = d.wave_done;
    pause.assigning_over = d.assigning_over;
    pause.threshold = d.threshold;
    return pause;
  }
  d.kind = Kind::kWait;
  if (s.current_wave >= 0) {
    if (s.golive.gate_between_waves) {
      if (s.gates_confirmed <= s.current_wave) {
        d.waiting =
            fmt::format("control point after wave {}: waiting for `fabu release gate {} --confirm`",
                        s.current_wave + 1, s.release_id);
        return d;
      }
    } else if (s.now < wave_done_at + s.golive.between_waves_seconds) {
      d.waiting =
          fmt::format("wave {} starts at {} ({} after wave {})", next + 1,
                      protocol::FormatRfc3339Utc(wave_done_at + s.golive.between_waves_seconds),
                      protocol::FormatDuration(s.golive.between_waves_seconds), s.current_wave + 1);
      return d;
    }
  }
  if (!blocker.empty()) {  // the window has not opened yet
    d.waiting = std::move(blocker);
    return d;
  }
  d.kind = Kind::kAssign;
  d.wave = next;
  return d;
}

}  // namespace

std::string_view RolloutDecisionKindName(RolloutDecision::Kind kind) {
  switch (kind) {
    case Kind::kNothing:
      return "nothing";
    case Kind::kWait:
      return "wait";
    case Kind::kAssign:
      return "assign";
    case Kind::kPause:
      return "pause";
    case Kind::kResume:
      return "resume";
    case Kind::kHalt:
      return "halt";
    case Kind::kRollBack:
      return "roll_back";
    case Kind::kFinish:
      return "finish";
  }
  return "?";
}

RolloutDecision DecideRollout(const RolloutSnapshot& snapshot) {
  switch (snapshot.state) {
    case ReleaseState::kDeploying:
      return DecideDeploying(snapshot);
    case ReleaseState::kPaused:
      return DecidePaused(snapshot);
    default:
      return {};  // failed waits for a person; the rest is over
  }
}

RollbackDecision DecideRollback(const std::vector<HostRollback>& hosts) {
  using State = HostRollback::State;
  RollbackDecision d;
  for (const HostRollback& h : hosts) {
    switch (h.state) {
      case State::kNeverMoved:
      case State::kNotInstalled:
        break;
      case State::kInstalling:
      case State::kRestoring:
        ++d.in_flight;
        break;
      case State::kToRestore:
        d.to_restore.push_back(&h);
        ++d.in_flight;
        break;
      case State::kRestored:
        ++d.restored;
        break;
      case State::kRestoreFailed:
        ++d.restore_failed;
        break;
    }
  }
  if (d.in_flight > 0) {
    d.waiting = fmt::format("rolling back: {} host(s) not final yet", d.in_flight);
    return d;
  }
  d.done = true;
  d.note = fmt::format("{} host(s) restored to their previous release", d.restored);
  if (d.restore_failed > 0) d.note += fmt::format(", {} failed to restore", d.restore_failed);
  return d;
}

}  // namespace fabu::coordinator::release
