// The daemon's periodic work: the deployment sweep, the audit checkpoints,
// the summaries of refused enrollments, the daily retention run
// (retention.hpp) (daemon.cpp).
//
// Each piece of work runs on the server's worker pool at its interval (first
// run one interval after start, or at start when asked), one run at a time, and at once (after the
// run in progress, if any) whenever its wake key is notified in the
// WakeupHub. Its timers live on the server's I/O thread, so no thread is
// held between runs, and stop when the server shuts down
// (HttpServer::OnShutdown).
#pragma once

// clang-format off
#include <utility>  // before any Boost.Asio header: asio/awaitable.hpp needs it with g++ 12
// clang-format on

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/common/wakeup_hub.hpp"
#include "coordinator/server/http_server.hpp"

namespace fabu::coordinator {

class PeriodicWork {
 public:
  // `wakeups` may be null (then no work runs early).
  PeriodicWork(HttpServer& server, WakeupHub* wakeups);
  PeriodicWork(const PeriodicWork&) = delete;
  PeriodicWork& operator=(const PeriodicWork&) = delete;

  // Runs `work` every `interval` while the server runs, and at once when
  // `wake_key` is notified ("": never early). Call before Start. `work` must
  // not throw.
  void Every(std::chrono::milliseconds interval, std::function<void()> work,
             std::string wake_key = "");
  // The same, with its first run as soon as the server runs.
  void EveryFromStart(std::chrono::milliseconds interval, std::function<void()> work);

  // Schedules every piece of work on the server's threads; they run once
  // HttpServer::Run does. Call once, before Run, and keep this object alive
  // until Run returns.
  void Start();

 private:
  struct Work {
    std::chrono::milliseconds interval;
    std::function<void()> work;
    std::string wake_key;   // WakeupHub key that runs it early; "": none
    bool at_start = false;  // first run at start rather than one interval later
  };
  boost::asio::awaitable<void> Run(std::size_t index);

  HttpServer& server_;
  WakeupHub* wakeups_;
  std::vector<Work> work_;
  // One timer per piece of work, and whether shutdown began. I/O thread only.
  std::vector<std::shared_ptr<boost::asio::steady_timer>> timers_;
  bool stopping_ = false;
};

}  // namespace fabu::coordinator
