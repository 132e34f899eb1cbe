// Answering a request for HttpServer (http_server.hpp): the route's handler
// run on the pool (or inline), a Response::Later waited for, a
// Response::Wait parked on a timer until its WakeupHub key is notified or its
// deadline, and the WakeupHub's hold honoured (a connection's next request
// held back, an expired wait waiting once more; wakeup_hub.hpp, "Holds").
// Which requests are held is the daemon's policy (ServerSettings::hold_next).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <filesystem>
#include <string>

#include "coordinator/server/error_status.hpp"
#include "coordinator/server/server_internal.hpp"

namespace fabu::coordinator {

net::awaitable<Exchange> HttpServer::Impl::Answer(const Route& route, RequestContext& ctx) {
  bool ran_out = false;
  auto result = co_await RunHandler(route, ctx, ran_out);
  if (!ctx.upload.empty()) {
    std::error_code ignored;
    std::filesystem::remove(ctx.upload, ignored);
  }
  if (!result) {
    if (HttpStatusFor(result.error().code()) >= 500) {
      spdlog::error("{}: {}", ctx.request_id, result.error().message());
    }
    co_return Refuse(result.error(), false);
  }
  co_return Exchange{std::move(*result), false, {}, ran_out};
}

std::optional<std::uint64_t> HttpServer::Impl::CancelAtHoldEnd(
    const std::shared_ptr<net::steady_timer>& timer) {
  const std::string key(WakeupHub::kHoldKey);
  // Generation first: a hold that ends after this read bumps it, so the
  // registration is refused rather than missing the wakeup.
  const std::uint64_t generation = wakeups_->Generation(key);
  if (!wakeups_->holding()) return std::nullopt;
  return wakeups_->Register(key, generation, WakeLater(timer, nullptr));
}

net::awaitable<void> HttpServer::Impl::WaitWhileHeld() {
  const auto until = std::chrono::steady_clock::now() + settings_.hold_limit;
  while (!stopping_ && std::chrono::steady_clock::now() < until && Held()) {
    auto timer = std::make_shared<net::steady_timer>(io_, until);
    auto id = CancelAtHoldEnd(timer);
    if (!id) continue;  // the hold ended meanwhile (or another began): look again
    timers_.insert(timer.get());
    beast::error_code ec;
    co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
    timers_.erase(timer.get());
    wakeups_->Unregister(std::string(WakeupHub::kHoldKey), *id);
  }
}

net::awaitable<Result<Response>> HttpServer::Impl::RunHandler(const Route& route,
                                                              RequestContext& ctx, bool& ran_out) {
  auto run = [&route, &ctx]() -> Result<Response> {
    // What the handler logs carries the request's id, release and host.
    const platform::log::Scope scope(ctx.LogFields());
    try {
      return route.handler(ctx);
    } catch (const std::exception& e) {
      return Fail(ErrorCode::kInternal, fmt::format("unexpected failure: {}", e.what()));
    }
  };
  Result<Response> result = Fail(ErrorCode::kInternal, "no answer");
  if (route.options.inline_handler && ctx.body.size() <= kInlineBodyLimit) {
    result = run();
  } else {
    result = co_await OnPool(run, LaneOf(ctx));
  }
  if (result && result->later) {
    // Answered from another thread (a Store::WriteAsync completion).
    std::shared_ptr<Deferred> deferred = std::move(result->later);
    auto timer = std::make_shared<net::steady_timer>(io_, net::steady_timer::time_point::max());
    // The wait below starts before the posted cancel can run (both on this thread).
    if (deferred->OnComplete(CancelLater(timer))) {
      beast::error_code ec;
      co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    result = deferred->Take();
  }
  // A wait that runs out while a wave is being assigned in parts (the hub
  // held) waits once more, for the rest of the wave (at most hold_limit): its
  // host may be in a part still to come, and a poll answered empty now comes
  // back only after a round trip through two busy event loops.
  bool extended = false;
  while (result && result->wait && wakeups_ != nullptr && !stopping_) {
    const WaitInstruction wait = *result->wait;
    if (!ctx.wait_until) ctx.wait_until = wait.until;
    auto until = wait.until;
    if (const auto now = std::chrono::steady_clock::now(); now >= until) {
      if (extended || !Held()) {
        ran_out = true;
        break;
      }
      extended = true;
      until = now + settings_.hold_limit;
    }
    auto timer = std::make_shared<net::steady_timer>(io_, until);
    auto answer = std::make_shared<WakeupHub::Answer>();
    auto id = wakeups_->Register(wait.key, wait.generation, WakeLater(timer, answer));
    std::optional<std::uint64_t> hold_id;
    if (id && extended) {
      hold_id = CancelAtHoldEnd(timer);
      if (!hold_id) {  // the hold ended meanwhile: look again now
        wakeups_->Unregister(wait.key, *id);
        id.reset();
      }
    }
    if (id) {
      timers_.insert(timer.get());
      beast::error_code ec;
      co_await timer->async_wait(net::redirect_error(net::use_awaitable, ec));
      timers_.erase(timer.get());
      wakeups_->Unregister(wait.key, *id);
      if (hold_id) wakeups_->Unregister(std::string(WakeupHub::kHoldKey), *hold_id);
      if (!ec) {  // the deadline: answer the body as it is, unless held (above)
        if (!extended && Held()) continue;
        ran_out = true;
        break;
      }
    }
    if (*answer) {
      // The wakeup handed over what a look would find: send it at once. A
      // whole wave's answers then leave in one burst, ahead of the requests
      // its hosts send next.
      result = Response::OkText(*answer);
      break;
    }
    // Woken (or the key moved before we registered, or shutdown): look again.
    result = co_await OnPool(run, LaneOf(ctx));
  }
  if (result) result->wait.reset();
  co_return result;
}

}  // namespace fabu::coordinator
