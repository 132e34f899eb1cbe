// The rollout's decision (coordinator/release/rollout_decision.hpp) on made-up
// snapshots and a made-up `now`: windows opening and closing, control points,
// pauses between waves, failure thresholds in counts and percentages,
// freezes and the emergency override, a wave of one host, waves that are
// dropped, an abort, a person's pause, and the rollback. No store, no clock,
// no waiting: what the end-to-end tests need real processes for is left to
// them (tests/e2e/rollout_e2e_test.cpp).
#include "coordinator/release/rollout_decision.hpp"

#include <gtest/gtest.h>

namespace fabu::coordinator::release {
namespace {

using Kind = RolloutDecision::Kind;

constexpr UnixSeconds kOpen = 1'800'000'000;  // the window opens
constexpr UnixSeconds kClose = kOpen + 3600;  // ... and closes an hour later

HostAmount Count(std::uint32_t n) { return {HostAmount::Kind::kCount, n}; }
HostAmount Percent(std::uint32_t p) { return {HostAmount::Kind::kPercent, p}; }

// A rollout of `targets` hosts in `waves`, tolerating `max_failures`, inside
// its window, before its first wave.
RolloutSnapshot Rollout(std::size_t targets, std::vector<HostAmount> waves,
                        HostAmount max_failures = Count(0)) {
  RolloutSnapshot s;
  s.release_id = "R-7";
  s.state = ReleaseState::kDeploying;
  s.golive.waves = waves;
  s.golive.max_failures = max_failures;
  s.golive.between_waves_seconds = 300;
  s.window = MaintenanceWindow{{kOpen, "2027-01-15T08:00:00Z"}, {kClose, "2027-01-15T09:00:00Z"}};
  const auto planned = RolloutWaves(waves, targets, max_failures);
  EXPECT_TRUE(planned) << planned.error().message();
  s.waves = *planned;
  s.targets = targets;
  s.now = kOpen + 60;
  return s;
}

// The current wave `wave` with `hosts` hosts, all assigned and final:
// `failed` of them failed.
void WaveFinal(RolloutSnapshot& s, long long wave, std::size_t hosts, std::size_t failed) {
  s.current_wave = wave;
  s.wave = {hosts, hosts, hosts, hosts - failed, failed};
  s.outcome.hosts += hosts;
  s.outcome.succeeded += hosts - failed;
  s.outcome.failed += failed;
}

TEST(RolloutDecisionTest, TheFirstWaveStartsInsideTheWindow) {
  const RolloutDecision d = DecideRollout(Rollout(10, {Count(1), Percent(50), Percent(100)}));
  EXPECT_EQ(d.kind, Kind::kAssign);
  EXPECT_EQ(d.wave, 0);
}

TEST(RolloutDecisionTest, BeforeTheWindowOpensItWaitsAndSaysUntilWhen) {
  RolloutSnapshot s = Rollout(10, {Percent(100)});
  s.now = kOpen - 1;
  const RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kWait);
  EXPECT_EQ(d.waiting, "waiting for the go-live window to open at 2027-01-15T08:00:00Z");
  s.now = kOpen;  // the instant it opens
  EXPECT_EQ(DecideRollout(s).kind, Kind::kAssign);
}

TEST(RolloutDecisionTest, AClosedWindowPausesTheRolloutAndNamesTheWayOn) {
  RolloutSnapshot s = Rollout(10, {Count(2), Percent(100)});
  WaveFinal(s, 0, 2, 0);
  s.wave_done_at = kOpen;
  s.now = kClose;  // the window's end is outside it
  const RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kPause);
  EXPECT_EQ(d.pause_kind, kPausedByWindow);
  EXPECT_EQ(d.reason,
            "the go-live window 2027-01-15T08:00:00Z .. 2027-01-15T09:00:00Z closed; schedule a "
            "new one with `fabu release reschedule R-7 --start T --end T`");
}

TEST(RolloutDecisionTest, AWaveBeingAssignedInPartsPausesWhenTheWindowClosesBetweenParts) {
  RolloutSnapshot s = Rollout(2000, {Percent(100)});
  s.current_wave = 0;
  s.wave = {2000, 500, 0, 0, 0};
  EXPECT_EQ(DecideRollout(s).kind, Kind::kAssign);
  EXPECT_EQ(DecideRollout(s).wave, 0);
  s.now = kClose + 1;
  const RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kPause);
  EXPECT_EQ(d.pause_kind, kPausedByWindow);
  EXPECT_FALSE(d.assigning_over);  // the rest of the wave follows after the pause
}

TEST(RolloutDecisionTest, APausedRolloutResumesOnceItsNewWindowIsOpen) {
  RolloutSnapshot s = Rollout(10, {Count(2), Percent(100)});
  WaveFinal(s, 0, 2, 0);
  s.state = ReleaseState::kPaused;
  s.pause_kind = kPausedByWindow;
  s.window->start.seconds = kClose + 7200;
  s.window->start.text = "2027-01-15T11:00:00Z";
  s.window->end.seconds = kClose + 10800;
  s.now = kClose + 60;
  EXPECT_EQ(DecideRollout(s).kind, Kind::kWait);
  s.now = kClose + 7200;
  const RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kResume);
  EXPECT_EQ(d.reason, "the go-live window is open");
}

TEST(RolloutDecisionTest, APersonsPauseIsLeftToThePerson) {
  RolloutSnapshot s = Rollout(10, {Percent(100)});
  s.state = ReleaseState::kPaused;
  s.pause_kind = kPausedByPerson;
  EXPECT_EQ(DecideRollout(s).kind, Kind::kNothing);
}

TEST(RolloutDecisionTest, AWaveNotFinalYetIsWaitedFor) {
  RolloutSnapshot s = Rollout(10, {Count(4), Percent(100)});
  s.current_wave = 0;
  s.wave = {4, 4, 3, 3, 0};
  const RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kWait);
  EXPECT_EQ(d.waiting, "wave 1 of 2: 3 of 4 host(s) final");
  EXPECT_TRUE(d.assigning_over);
  EXPECT_FALSE(d.wave_done);
}

TEST(RolloutDecisionTest, TheNextWaveWaitsForThePauseBetweenWavesCountedFromTheWavesEnd) {
  RolloutSnapshot s = Rollout(10, {Count(2), Percent(100)});
  WaveFinal(s, 0, 2, 0);
  // The wave just became final: recorded now, and the pause starts now.
  RolloutDecision d = DecideRollout(s);
  EXPECT_TRUE(d.wave_done);
  EXPECT_EQ(d.kind, Kind::kWait);
  EXPECT_EQ(d.waiting, "wave 2 starts at 2027-01-15T08:06:00Z (5m after wave 1)");
  s.wave_done_at = s.now;
  s.now += 299;
  d = DecideRollout(s);
  EXPECT_FALSE(d.wave_done);  // recorded once
  EXPECT_EQ(d.kind, Kind::kWait);
  s.now += 1;
  d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kAssign);
  EXPECT_EQ(d.wave, 1);
}

TEST(RolloutDecisionTest, AControlPointWaitsForItsGateAndOnlyForIt) {
  RolloutSnapshot s = Rollout(10, {Count(2), Percent(50), Percent(100)});
  s.golive.gate_between_waves = true;
  WaveFinal(s, 0, 2, 0);
  s.wave_done_at = s.now;
  s.now = kClose - 1;  // time alone does not pass a gate
  RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kWait);
  EXPECT_EQ(d.waiting, "control point after wave 1: waiting for `fabu release gate R-7 --confirm`");
  s.now = kOpen + 120;
  s.gates_confirmed = 1;
  d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kAssign);
  EXPECT_EQ(d.wave, 1);
  // After wave 2, the first gate does not count for the second control point.
  s.outcome = {};
  WaveFinal(s, 1, 3, 0);
  EXPECT_EQ(DecideRollout(s).kind, Kind::kWait);
}

TEST(RolloutDecisionTest, AWaveOverItsCountThresholdHaltsWithoutAutoRollback) {
  RolloutSnapshot s = Rollout(10, {Count(4), Percent(100)}, Count(1));
  WaveFinal(s, 0, 4, 2);
  const RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kHalt);
  EXPECT_TRUE(d.outcome.halted);
  EXPECT_EQ(d.outcome.failed, 2u);
  EXPECT_EQ(d.threshold, 1u);
  EXPECT_EQ(d.outcome.reason,
            "wave 1 of 2: 2 of 4 host(s) failed, over max_failures 1 (1 tolerated in this "
            "wave); waiting for `fabu release rollback` or `fabu release resume`");
}

TEST(RolloutDecisionTest, FailuresAtTheThresholdGoOn) {
  RolloutSnapshot s = Rollout(10, {Count(4), Percent(100)}, Count(1));
  WaveFinal(s, 0, 4, 1);
  s.golive.between_waves_seconds = 0;
  const RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kAssign);
  EXPECT_EQ(d.wave, 1);
}

TEST(RolloutDecisionTest, APercentThresholdIsOfEachWaveRoundedDown) {
  // 20 hosts: waves of 4 and 16; 25% tolerates 1 of 4, then 4 of 16.
  RolloutSnapshot s = Rollout(20, {Count(4), Percent(100)}, Percent(25));
  ASSERT_EQ(s.waves, (std::vector<Wave>{{4, 4, 1}, {20, 16, 4}}));
  WaveFinal(s, 0, 4, 2);
  EXPECT_EQ(DecideRollout(s).kind, Kind::kHalt);
  s.outcome = {};
  WaveFinal(s, 1, 16, 4);
  EXPECT_EQ(DecideRollout(s).kind, Kind::kFinish);
  s.outcome = {};
  WaveFinal(s, 1, 16, 5);
  EXPECT_EQ(DecideRollout(s).kind, Kind::kHalt);
}

TEST(RolloutDecisionTest, AutoRollbackRollsBackInsteadOfHalting) {
  RolloutSnapshot s = Rollout(10, {Count(4), Percent(100)});
  s.golive.auto_rollback = true;
  WaveFinal(s, 0, 4, 1);
  const RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kRollBack);
  EXPECT_EQ(d.reason,
            "wave 1 of 2: 1 of 4 host(s) failed, over max_failures 0 (0 tolerated in this "
            "wave); auto_rollback");
}

TEST(RolloutDecisionTest, AWaveAPersonAcceptedGoesOnPastItsFailures) {
  RolloutSnapshot s = Rollout(10, {Count(4), Percent(100)});
  WaveFinal(s, 0, 4, 2);
  s.accepted_wave = 0;
  s.golive.between_waves_seconds = 0;
  EXPECT_EQ(DecideRollout(s).kind, Kind::kAssign);
}

TEST(RolloutDecisionTest, TheLastWaveDoneFinishesTheRollout) {
  RolloutSnapshot s = Rollout(10, {Count(4), Percent(100)});
  s.outcome = {4, 4, 0, false, ""};
  WaveFinal(s, 1, 6, 0);
  const RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kFinish);
  EXPECT_FALSE(d.outcome.halted);
  EXPECT_EQ(d.outcome.hosts, 10u);
  EXPECT_EQ(d.outcome.succeeded, 10u);
  EXPECT_TRUE(d.wave_done);
}

TEST(RolloutDecisionTest, AWaveOfOneHost) {
  RolloutSnapshot s = Rollout(1, {Count(1)});
  ASSERT_EQ(s.wave_count(), 1u);
  EXPECT_EQ(DecideRollout(s).kind, Kind::kAssign);
  WaveFinal(s, 0, 1, 0);
  EXPECT_EQ(DecideRollout(s).kind, Kind::kFinish);
  s.outcome = {};
  WaveFinal(s, 0, 1, 1);
  EXPECT_EQ(DecideRollout(s).kind, Kind::kHalt);
}

TEST(RolloutDecisionTest, WavesWithNoHostLeftAreDroppedSoTheLastWaveEndsIt) {
  // 3 hosts in waves 1, 25%, 50%, 100%: 1, 2, 3 (the fourth adds nobody).
  RolloutSnapshot s = Rollout(3, {Count(1), Percent(25), Percent(50), Percent(100)});
  ASSERT_EQ(s.wave_count(), 3u);
  WaveFinal(s, 2, 1, 0);
  EXPECT_EQ(DecideRollout(s).kind, Kind::kFinish);
}

TEST(RolloutDecisionTest, AFreezePausesTheRolloutUnlessAnEmergencyOverrideWasRecorded) {
  RolloutSnapshot s = Rollout(10, {Count(2), Percent(100)});
  WaveFinal(s, 0, 2, 0);
  s.wave_done_at = kOpen;
  s.freeze = FreezeInForce{"F-2", "year-end close", "2027-01-16T00:00:00Z"};
  RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kPause);
  EXPECT_EQ(d.pause_kind, kPausedByFreeze);
  EXPECT_EQ(d.reason, "freeze F-2 (year-end close) until 2027-01-16T00:00:00Z");
  s.freeze_override = true;
  s.now = kOpen + 300;  // the pause between waves is over
  d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kAssign);
}

TEST(RolloutDecisionTest, ARolloutPausedByAFreezeResumesWhenItEnds) {
  RolloutSnapshot s = Rollout(10, {Count(2), Percent(100)});
  WaveFinal(s, 0, 2, 0);
  s.state = ReleaseState::kPaused;
  s.pause_kind = kPausedByFreeze;
  s.freeze = FreezeInForce{"F-2", "year-end close", "2027-01-16T00:00:00Z"};
  EXPECT_EQ(DecideRollout(s).waiting, "freeze F-2 (year-end close) until 2027-01-16T00:00:00Z");
  s.freeze.reset();
  const RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kResume);
  EXPECT_EQ(d.reason, "no freeze applies any more");
}

TEST(RolloutDecisionTest, AnAbortAssignsNoMoreAndFinishesOnceNothingIsInFlight) {
  RolloutSnapshot s = Rollout(10, {Count(2), Percent(100)});
  s.current_wave = 0;
  s.wave = {2, 1, 0, 0, 0};
  s.aborted = true;
  RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kWait);  // the one assigned host is not final
  EXPECT_TRUE(d.assigning_over);
  s.wave = {2, 1, 1, 1, 0};
  s.outcome = {1, 1, 0, false, ""};
  d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kFinish);
  EXPECT_TRUE(d.outcome.halted);
  EXPECT_EQ(d.outcome.reason, "aborted: 9 host(s) never assigned");
}

TEST(RolloutDecisionTest, OtherStatesDecideNothing) {
  for (ReleaseState state : {ReleaseState::kFailed, ReleaseState::kDeployed,
                             ReleaseState::kRolledBack, ReleaseState::kClosed}) {
    RolloutSnapshot s = Rollout(10, {Percent(100)});
    s.state = state;
    EXPECT_EQ(DecideRollout(s).kind, Kind::kNothing) << ReleaseStateName(state);
  }
}

TEST(RollbackDecisionTest, RestoresEveryHostWhoseInstallSucceededAndEndsWhenAllAreFinal) {
  using State = HostRollback::State;
  std::vector<HostRollback> hosts = {{"a", 0, State::kToRestore},
                                     {"b", 0, State::kNotInstalled},
                                     {"c", 1, State::kNeverMoved},
                                     {"d", 1, State::kInstalling}};
  RollbackDecision d = DecideRollback(hosts);
  ASSERT_EQ(d.to_restore.size(), 1u);
  EXPECT_EQ(d.to_restore[0]->host, "a");
  EXPECT_FALSE(d.done);
  EXPECT_EQ(d.waiting, "rolling back: 2 host(s) not final yet");
  hosts[0].state = State::kRestored;
  hosts[3].state = State::kRestoreFailed;
  d = DecideRollback(hosts);
  EXPECT_TRUE(d.done);
  EXPECT_TRUE(d.to_restore.empty());
  EXPECT_EQ(d.note, "1 host(s) restored to their previous release, 1 failed to restore");
}

TEST(RollbackDecisionTest, NothingToRestoreEndsAtOnce) {
  const RollbackDecision d = DecideRollback({});
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.note, "0 host(s) restored to their previous release");
}

}  // namespace
}  // namespace fabu::coordinator::release
