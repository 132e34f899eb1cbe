// The coordinator's clock: the one place it reads the time.
//
// The daemon makes one SystemClock and passes it to what needs the time: the
// store (whose transactions stamp what they record, Transaction::clock), the
// API handlers (ApiContext::clock) and the periodic sweep. Tests pass a
// FakeClock and move it as they like, so nothing waits for real time to
// pass. Time is read nowhere else (docs/architecture.md "The clock").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;

  // Whole seconds since the Unix epoch, UTC.
  protocol::UnixSeconds Seconds() const;
  // RFC 3339 UTC with milliseconds: "2026-12-01T01:00:00.123Z", as the
  // store records times.
  std::string Utc() const;
};

// Wall-clock time (std::chrono::system_clock). Thread-safe.
class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override;
};

// The process's SystemClock, for what runs without a daemon to pass one in
// (`fabu-coordinator init` and the offline commands).
const Clock& WallClock();

// A clock that says what it was set to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(protocol::UnixSeconds start) : millis_(start * 1000) {}
  std::chrono::system_clock::time_point Now() const override;
  void Set(protocol::UnixSeconds seconds) { millis_ = seconds * 1000; }
  void Advance(std::chrono::milliseconds by) { millis_ += by.count(); }

 private:
  std::atomic<std::int64_t> millis_;
};

// `at` as RFC 3339 UTC with milliseconds.
std::string FormatUtcMillis(std::chrono::system_clock::time_point at);

}  // namespace fabu::coordinator
