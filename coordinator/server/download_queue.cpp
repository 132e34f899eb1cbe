// The download slots of HttpServer (http_server.hpp): at most max_downloads
// Response::File written at once; a request past them waits in a queue (at
// most download_queue long, first come first served) and is handed the slot
// of the download that ends first, or, after download_wait, answered 503 with
// a Retry-After of when its turn should come. A queued request holds its
// connection and its handler's answer (the file's path), never the file: the
// file is opened once the slot is the request's.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/redirect_error.hpp>
#include <cmath>

#include "coordinator/server/server_internal.hpp"

namespace fabu::coordinator {

net::awaitable<std::optional<std::chrono::seconds>> HttpServer::Impl::AcquireDownload() {
  if (downloads_ < settings_.max_downloads && download_queue_.empty()) {
    ++downloads_;
    PublishLoad();
    co_return std::nullopt;
  }
  if (download_queue_.size() >= settings_.download_queue || stopping_ ||
      settings_.download_wait.count() <= 0) {
    co_return TurnIn(download_queue_.size());
  }
  const auto queued_at = std::chrono::steady_clock::now();
  net::steady_timer timer(io_, queued_at + settings_.download_wait);
  DownloadWaiter waiter{&timer};
  download_queue_.push_back(&waiter);
  PublishLoad();
  timers_.insert(&timer);
  beast::error_code ec;
  co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
  timers_.erase(&timer);
  // Handed the slot (ReleaseDownload took the waiter off the queue), also
  // when the deadline passed in the same turn of the event loop.
  if (waiter.granted) {
    spdlog::info("a package download waited {} ms in the queue for its slot",
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - queued_at)
                     .count());
    co_return std::nullopt;
  }
  // The deadline, or shutdown: leave the queue and say when to come back.
  const auto at = std::ranges::find(download_queue_, &waiter);
  const auto ahead = static_cast<std::size_t>(at - download_queue_.begin());
  if (at != download_queue_.end()) download_queue_.erase(at);
  PublishLoad();
  co_return TurnIn(ahead);
}

void HttpServer::Impl::PublishLoad() {
  if (settings_.load == nullptr) return;
  settings_.load->connections.store(connections_.size(), std::memory_order_relaxed);
  settings_.load->downloads.store(downloads_, std::memory_order_relaxed);
  settings_.load->queued_downloads.store(download_queue_.size(), std::memory_order_relaxed);
}

void HttpServer::Impl::ReleaseDownload(std::chrono::steady_clock::duration held) {
  constexpr double kWeight = 0.2;  // of the newest download in the average
  download_average_ =
      download_average_ * (1 - kWeight) + std::chrono::duration<double>(held) * kWeight;
  if (download_queue_.empty()) {
    --downloads_;
    PublishLoad();
    return;
  }
  // The slot passes to the first in the queue: downloads_ stays as it is.
  DownloadWaiter* next = download_queue_.front();
  download_queue_.pop_front();
  PublishLoad();
  next->granted = true;
  next->timer->cancel();
}

std::chrono::seconds HttpServer::Impl::TurnIn(std::size_t ahead) const {
  const double rounds = static_cast<double>(ahead + 1) /
                        static_cast<double>(std::max<std::size_t>(settings_.max_downloads, 1));
  const auto seconds =
      static_cast<std::chrono::seconds::rep>(std::ceil(rounds * download_average_.count()));
  return std::clamp(std::chrono::seconds(seconds), std::chrono::seconds(1),
                    std::max(settings_.retry_after, std::chrono::seconds(1)));
}

}  // namespace fabu::coordinator
