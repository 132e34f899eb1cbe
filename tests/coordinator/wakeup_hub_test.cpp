#include "coordinator/common/wakeup_hub.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/api/idle_hosts.hpp"

namespace fabu::coordinator {
namespace {

TEST(WakeupHubTest, NotifyWakesEveryWaiterOfTheKeyOnce) {
  WakeupHub hub;
  const std::string key = WakeupHub::HostKey("web-1");
  int woken = 0, other = 0;
  ASSERT_TRUE(hub.Register(key, hub.Generation(key), [&](const WakeupHub::Answer&) { ++woken; }));
  ASSERT_TRUE(hub.Register(key, hub.Generation(key), [&](const WakeupHub::Answer&) { ++woken; }));
  ASSERT_TRUE(hub.Register("host:web-2", 0, [&](const WakeupHub::Answer&) { ++other; }));
  EXPECT_EQ(hub.waiting(), 3u);
  hub.Notify(key);
  EXPECT_EQ(woken, 2);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(hub.waiting(), 1u);
  hub.Notify(key);  // the wakers were dropped
  EXPECT_EQ(woken, 2);
}

TEST(WakeupHubTest, TheSweepIsWokenLikeAPollButIsNoLongPoll) {
  WakeupHub hub;
  const std::string sweep(WakeupHub::kSweepKey);
  int swept = 0;
  ASSERT_TRUE(
      hub.Register(sweep, hub.Generation(sweep), [&](const WakeupHub::Answer&) { ++swept; }));
  ASSERT_TRUE(hub.Register("host:web-1", 0, [](const WakeupHub::Answer&) {}));
  EXPECT_EQ(hub.waiting(), 1u);
  hub.Notify(sweep);
  EXPECT_EQ(swept, 1);
  EXPECT_EQ(hub.waiting(), 1u);
  // Notified while it ran: its next registration is refused, so it runs again.
  EXPECT_FALSE(hub.Register(sweep, 0, [](const WakeupHub::Answer&) {}));
}

TEST(WakeupHubTest, HoldsNestAndTheEndOfTheLastOneWakesTheHeld) {
  WakeupHub hub;
  const std::string key(WakeupHub::kHoldKey);
  EXPECT_FALSE(hub.holding());
  int released = 0;
  {
    HubHold outer(&hub);
    EXPECT_TRUE(hub.holding());
    ASSERT_TRUE(
        hub.Register(key, hub.Generation(key), [&](const WakeupHub::Answer&) { ++released; }));
    EXPECT_EQ(hub.waiting(), 0u);  // a held request is no long poll
    EXPECT_EQ(hub.held(), 1u);
    {
      HubHold inner(&hub);
      EXPECT_TRUE(hub.holding());
    }
    EXPECT_TRUE(hub.holding());
    EXPECT_EQ(released, 0);
  }
  EXPECT_FALSE(hub.holding());
  EXPECT_EQ(released, 1);
  EXPECT_EQ(hub.held(), 0u);
  HubHold none(nullptr);  // a sweep without a hub holds nothing
  EXPECT_FALSE(hub.holding());
}

TEST(WakeupHubTest, APassedHoldLastsUntilItsTakerEndsIt) {
  WakeupHub hub;
  const std::string key(WakeupHub::kHoldKey);
  EXPECT_EQ(hub.TakePassedHolds(), 0u);
  hub.PassHold();
  hub.PassHold();
  EXPECT_TRUE(hub.holding());
  int released = 0;
  ASSERT_TRUE(
      hub.Register(key, hub.Generation(key), [&](const WakeupHub::Answer&) { ++released; }));
  const std::size_t taken = hub.TakePassedHolds();
  EXPECT_EQ(taken, 2u);
  EXPECT_EQ(hub.TakePassedHolds(), 0u);  // taken once
  EXPECT_TRUE(hub.holding());            // until the taker ends them
  hub.EndHold();
  EXPECT_TRUE(hub.holding());
  EXPECT_EQ(released, 0);
  hub.EndHold();
  EXPECT_FALSE(hub.holding());
  EXPECT_EQ(released, 1);
}

TEST(WakeupHubTest, AHoldEndingBetweenLookAndRegisterIsNotMissed) {
  WakeupHub hub;
  const std::string key(WakeupHub::kHoldKey);
  auto hold = std::make_unique<HubHold>(&hub);
  // The server reads the generation, then sees the hold on ...
  const std::uint64_t seen = hub.Generation(key);
  EXPECT_TRUE(hub.holding());
  hold.reset();  // ... and the hold ends before it registers:
  EXPECT_FALSE(hub.Register(key, seen, [](const WakeupHub::Answer&) {}));
  EXPECT_FALSE(hub.holding());
}

TEST(WakeupHubTest, AnAnswerHandedOverReachesEveryWaiterAndAPlainNotifyHandsNone) {
  WakeupHub hub;
  const std::string key = WakeupHub::HostKey("web-1");
  std::vector<WakeupHub::Answer> got;
  auto record = [&](const WakeupHub::Answer& answer) { got.push_back(answer); };
  ASSERT_TRUE(hub.Register(key, hub.Generation(key), record));
  ASSERT_TRUE(hub.Register(key, hub.Generation(key), record));
  hub.Notify(key,
             std::make_shared<const std::string>(R"({"assignment":{"deployment":"R-1-1-web-1"}})"));
  ASSERT_EQ(got.size(), 2u);
  for (const WakeupHub::Answer& answer : got) {
    ASSERT_NE(answer, nullptr);
    EXPECT_EQ(*answer, R"({"assignment":{"deployment":"R-1-1-web-1"}})");
  }
  ASSERT_TRUE(hub.Register(key, hub.Generation(key), record));
  hub.Notify(key);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got.back(), nullptr);  // look again
}

TEST(WakeupHubTest, ANotifyBetweenLookAndRegisterIsNotLost) {
  // Given a waiter that read the generation, then looked at the store, we
  // should refuse its registration when an assignment was made in between.
  WakeupHub hub;
  const std::string key = WakeupHub::HostKey("web-1");
  const auto seen = hub.Generation(key);
  hub.Notify(key);
  EXPECT_FALSE(hub.Register(key, seen, [](const WakeupHub::Answer&) {}));
  EXPECT_TRUE(hub.Register(key, hub.Generation(key), [](const WakeupHub::Answer&) {}));
}

TEST(WakeupHubTest, UnregisterDropsAWaiterThatTimedOut) {
  WakeupHub hub;
  int woken = 0;
  auto id = hub.Register("k", 0, [&](const WakeupHub::Answer&) { ++woken; });
  ASSERT_TRUE(id);
  hub.Unregister("k", *id);
  hub.Unregister("k", *id);  // twice is harmless
  hub.Unregister("unknown", 42);
  EXPECT_EQ(hub.waiting(), 0u);
  hub.Notify("k");
  EXPECT_EQ(woken, 0);
}

TEST(WakeupHubTest, ConcurrentRegisterAndNotifyLoseNoWakeup) {
  WakeupHub hub;
  std::atomic<int> woken = 0;
  std::atomic<int> registered = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string key = "host:" + std::to_string((t * 500 + i) % 7);
        if (hub.Register(key, hub.Generation(key), [&](const WakeupHub::Answer&) { ++woken; }))
          ++registered;
        if (i % 3 == 0) hub.Notify(key);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int k = 0; k < 7; ++k) hub.Notify("host:" + std::to_string(k));
  EXPECT_EQ(woken.load(), registered.load());
  EXPECT_EQ(hub.waiting(), 0u);
}

// After the link to the peers was down, no earlier look is trusted: every
// key moves, not only those with a waiter.
TEST(WakeupHubTest, WakeEveryoneMovesEveryKeyAndWakesEveryWaiter) {
  WakeupHub hub;
  const std::string waiting = WakeupHub::HostKey("web-1"), idle = WakeupHub::HostKey("web-2");
  hub.Notify(idle);
  const std::uint64_t looked_at = hub.Generation(idle);
  int woken = 0;
  ASSERT_TRUE(
      hub.Register(waiting, hub.Generation(waiting), [&](const WakeupHub::Answer&) { ++woken; }));
  hub.WakeEveryone();
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(hub.waiting(), 0u);
  EXPECT_NE(hub.Generation(idle), looked_at);
}

TEST(IdleHostsTest, AnIdleLookIsTrustedOnlyWhileItsKeyHasNotMovedAndForALimitedTime) {
  using namespace std::chrono_literals;
  IdleHosts idle(2min);
  const auto t0 = IdleHosts::Clock::now();
  EXPECT_FALSE(idle.StillIdle("web-1", 0, true, t0)) << "never looked";
  idle.Looked("web-1", 3, true, true, t0);
  EXPECT_TRUE(idle.StillIdle("web-1", 3, true, t0 + 1s));
  EXPECT_TRUE(idle.StillIdle("web-1", 3, false, t0 + 119s));
  EXPECT_FALSE(idle.StillIdle("web-1", 4, true, t0 + 1s)) << "something was announced since";
  EXPECT_FALSE(idle.StillIdle("web-1", 3, true, t0 + 2min)) << "looked too long ago";
  EXPECT_FALSE(idle.StillIdle("web-2", 3, true, t0 + 1s)) << "another host";
  // A look that did not ask for pre-flight questions says nothing of them.
  idle.Looked("web-2", 5, false, true, t0);
  EXPECT_TRUE(idle.StillIdle("web-2", 5, false, t0 + 1s));
  EXPECT_FALSE(idle.StillIdle("web-2", 5, true, t0 + 1s));
  // A look that found something is not idle, whatever came before.
  idle.Looked("web-1", 3, true, false, t0 + 2s);
  EXPECT_FALSE(idle.StillIdle("web-1", 3, true, t0 + 3s));
}

}  // namespace
}  // namespace fabu::coordinator
