// What a production rollout does next, decided from a snapshot of it: a pure
// function, no store and no clock (docs/architecture.md "The rollout's tick").
//
// The rollout engine (coordinator/deploy/rollout_engine.cpp) loads a
// RolloutSnapshot inside its transaction, calls DecideRollout (or
// DecideRollback while the release is rolling back) and applies what comes
// back: it saves the release's transition, assigns deployments, records the
// audit entries. Everything that decides lives here, so it is tested with
// made-up snapshots and a made-up `now` (tests/release/rollout_decision_test.cpp).
//
// One decision, in state deploying:
// - while the current wave has hosts not assigned yet: its next part (unless
//   a closed window or a freeze pauses the rollout; an aborted rollout
//   assigns no more);
// - while the current wave has a host not final: wait;
// - once it is final: over its failure threshold (and not accepted by a
//   person with `resume`), the rollout halts: with auto_rollback the release
//   goes rolling_back, else failed (waiting for `rollback` or `resume`);
// - then the go-live plan's checks on metrics (metric_check.hpp), unless a
//   person accepted the wave: a failed one halts it as above; an
//   inconclusive one pauses the rollout (reason "check") until a person
//   resumes it (which accepts the wave) or rolls back; while one is still
//   measuring, wait (dry-run checks are only recorded);
// - the last wave done, or an aborted rollout with nothing in flight: the
//   release goes deployed (completed) or failed (aborted);
// - else the next wave starts when its conditions hold: the gate confirmed
//   (between_waves: gate) or the pause elapsed; inside the window (past its
//   end the rollout pauses, reason "window"); no freeze applies (else it
//   pauses, reason "freeze") unless an emergency override was recorded.
// In state paused for a window or a freeze, it resumes by itself once the
// window is open and no freeze applies (the engine then decides again, as
// deploying). A person's pause is left to the person.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/release/golive_plan.hpp"
#include "coordinator/release/workflow.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator::release {

// Why a rollout is paused (the store's rollouts.pause_kind).
inline constexpr std::string_view kPausedByPerson = "person";
inline constexpr std::string_view kPausedByWindow = "window";
inline constexpr std::string_view kPausedByFreeze = "freeze";
// A check on metrics was inconclusive (metric_check.hpp): a person decides.
inline constexpr std::string_view kPausedByCheck = "check";

// The hosts of one wave, by where their install deployment stands.
struct WaveTally {
  std::size_t hosts = 0;      // in the wave
  std::size_t assigned = 0;   // with an install deployment
  std::size_t final = 0;      // ... that is final
  std::size_t succeeded = 0;  // ... and succeeded
  std::size_t failed = 0;     // ... and did not
};

// A freeze in force on the hosts concerned.
struct FreezeInForce {
  std::string id;      // "F-3"
  std::string reason;  // as the person wrote it
  std::string until;   // RFC 3339
};

// Where one of the go-live plan's checks stands for the current wave: its
// measurements taken since the wave's hosts were all final, judged.
struct WaveCheck {
  MetricCheck check;
  CheckVerdict verdict;
  UnixSeconds next_at = 0;  // when its next measurement is due
};

struct RolloutSnapshot {
  std::string release_id;
  ReleaseState state = ReleaseState::kDeploying;  // deploying or paused
  GoLivePlan golive;
  std::optional<MaintenanceWindow> window;  // the window in force (Release::ActiveWindow)
  bool freeze_override = false;             // an approver's emergency override
  // A freeze in force at `now` on the hosts the next step concerns: the
  // current wave's hosts while it has hosts left to assign (and is not
  // aborted), else every target. The engine looks it up for that set only.
  std::optional<FreezeInForce> freeze;

  std::vector<Wave> waves;
  long long current_wave = -1;    // -1 before the first wave
  UnixSeconds wave_done_at = 0;   // when the current wave became final (0: not yet)
  long long gates_confirmed = 0;  // control points passed
  long long accepted_wave = -1;   // a person resumed past this wave's failures
  bool aborted = false;           // a person aborted: nothing more is assigned
  std::string pause_kind;         // kPausedBy*, or "" when not paused

  WaveTally wave;  // the current wave (when current_wave >= 0)
  // The current wave's checks, one per golive.checks, once its hosts are
  // all final (wave_done_at set); empty before.
  std::vector<WaveCheck> checks;
  RolloutOutcome outcome;   // every target's latest install so far (hosts = assigned ones)
  std::size_t targets = 0;  // hosts in the rollout
  UnixSeconds now = 0;

  std::size_t wave_count() const { return waves.size(); }
};

struct RolloutDecision {
  enum class Kind {
    kNothing,   // leave everything as it is (a person's pause)
    kWait,      // nothing to do now; `waiting` says why
    kAssign,    // give `wave`'s next hosts their work (starting the wave if not current)
    kPause,     // the release goes paused (`pause_kind`), `reason` in its history
    kResume,    // a rollout paused by its window or a freeze goes on (`reason`); decide again
    kHalt,      // a wave over its threshold, no auto_rollback: the release fails (`outcome`)
    kRollBack,  // a wave over its threshold with auto_rollback: rolling_back (`reason`)
    kFinish,    // every wave done, or aborted with nothing in flight (`outcome`)
  };
  Kind kind = Kind::kNothing;
  long long wave = -1;     // kAssign
  std::string waiting;     // what the rollout waits for (kWait, kPause, kHalt)
  std::string pause_kind;  // kPause
  std::string reason;      // the note of the release's transition
  RolloutOutcome outcome;  // kHalt, kFinish
  // The current wave just became final within its threshold: the engine
  // records when (wave_done_at = now), once; the rest of the decision counts
  // the pause between waves from now.
  bool wave_done = false;
  // The current wave has no host left to assign (or the rollout was aborted):
  // the engine stops assigning it in parts.
  bool assigning_over = false;
  std::uint64_t threshold = 0;  // the current wave's, for the audit entry
};

std::string_view RolloutDecisionKindName(RolloutDecision::Kind kind);

// The next step of a rollout in state deploying or paused (see above).
RolloutDecision DecideRollout(const RolloutSnapshot& snapshot);

// One host of a release rolling back, by its latest install and rollback
// deployments.
struct HostRollback {
  enum class State {
    kNeverMoved,     // no install deployment
    kInstalling,     // the install is not final: let it finish (it may still need restoring)
    kNotInstalled,   // the install failed, or the agent rolled it back itself
    kToRestore,      // the install succeeded and no rollback deployment exists
    kRestoring,      // its rollback deployment is not final
    kRestored,       // ... ended rolled_back
    kRestoreFailed,  // ... ended otherwise
  };
  std::string host;
  long long wave = 0;
  State state = State::kNeverMoved;
};

struct RollbackDecision {
  std::vector<const HostRollback*> to_restore;  // give these a rollback deployment
  std::size_t in_flight = 0;                    // installs or rollbacks not final (after these)
  std::size_t restored = 0;
  std::size_t restore_failed = 0;
  bool done = false;    // nothing in flight: the release goes rolled_back
  std::string waiting;  // when not done
  std::string note;     // when done: the transition's note
};

// Every host whose install succeeded is restored; the rollback ends once
// every install and rollback deployment is final.
RollbackDecision DecideRollback(const std::vector<HostRollback>& hosts);

}  // namespace fabu::coordinator::release
