#include "coordinator/daemon/periodic.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <exception>
#include <optional>

namespace fabu::coordinator {

namespace net = boost::asio;

PeriodicWork::PeriodicWork(HttpServer& server, WakeupHub* wakeups)
    : server_(server), wakeups_(wakeups) {}

void PeriodicWork::Every(std::chrono::milliseconds interval, std::function<void()> work,
                         std::string wake_key) {
  work_.push_back({interval, std::move(work), std::move(wake_key)});
}

void PeriodicWork::EveryFromStart(std::chrono::milliseconds interval, std::function<void()> work) {
  work_.push_back({interval, std::move(work), "", true});
}

void PeriodicWork::Start() {
  for (std::size_t i = 0; i < work_.size(); ++i) {
    timers_.push_back(std::make_shared<net::steady_timer>(server_.io_executor()));
  }
  server_.OnShutdown([this] {
    stopping_ = true;
    for (const auto& timer : timers_) timer->cancel();
  });
  for (std::size_t i = 0; i < work_.size(); ++i) {
    net::co_spawn(server_.io_executor(), Run(i), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("periodic work ended: {}", ex.what());
      }
    });
  }
}

net::awaitable<void> PeriodicWork::Run(std::size_t index) {
  const Work& periodic = work_[index];
  const bool wakeable = !periodic.wake_key.empty() && wakeups_ != nullptr;
  const std::shared_ptr<net::steady_timer> timer = timers_[index];
  // A wakeup may come from any thread: the cancel is posted to the I/O
  // thread, the only one that touches the timer.
  const auto wake = [timer, executor = server_.io_executor()](const WakeupHub::Answer&) {
    net::post(executor, [timer] { timer->cancel(); });
  };
  // A notify while the work runs (or before the first wait) is not lost: the
  // key's generation moved, so Register refuses and the work runs again.
  std::uint64_t seen = wakeable ? wakeups_->Generation(periodic.wake_key) : 0;
  bool now = periodic.at_start;
  while (!stopping_) {
    timer->expires_after(periodic.interval);
    std::optional<std::uint64_t> id;
    if (wakeable && !now) id = wakeups_->Register(periodic.wake_key, seen, wake);
    if (!now && (!wakeable || id)) {
      boost::system::error_code ec;
      co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
      if (id) wakeups_->Unregister(periodic.wake_key, *id);
      // Cancelled: by shutdown (stopping_) or by a wakeup (run now).
      if (ec && (!wakeable || ec != net::error::operation_aborted)) break;
    }
    now = false;
    if (stopping_) break;
    if (wakeable) seen = wakeups_->Generation(periodic.wake_key);
    // On the worker pool; resumes here, on the I/O thread.
    co_await net::co_spawn(
        server_.pool_executor(),
        [&periodic]() -> net::awaitable<void> {
          periodic.work();
          co_return;
        },
        net::use_awaitable);
  }
}

}  // namespace fabu::coordinator
