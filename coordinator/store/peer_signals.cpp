#include "coordinator/store/peer_signals.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace fabu::coordinator {
namespace {

// A PostgreSQL array literal of `keys` (each element quoted).
std::string ArrayLiteral(const std::vector<std::string>& keys, std::size_t from, std::size_t to) {
  std::string out = "{";
  for (std::size_t i = from; i < to; ++i) {
    if (i > from) out += ',';
    out += '"';
    for (const char c : keys[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string ConnectionError(PGconn* conn) {
  std::string text = PQerrorMessage(conn);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

PeerSignals::PeerSignals(StoreTarget target, OnKey on_key, std::function<void()> on_reconnect)
    : target_(std::move(target)),
      on_key_(std::move(on_key)),
      on_reconnect_(std::move(on_reconnect)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  thread_ = std::thread([this] { Run(); });
}

PeerSignals::~PeerSignals() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stopped_.notify_all();
  Interrupt();
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void PeerSignals::Interrupt() {
  if (wake_fd_ < 0) return;
  const std::uint64_t one = 1;
  // A full counter already wakes the thread: nothing to do on failure.
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
}

void PeerSignals::Send(const std::string& key) {
  if (key.size() > kMaxKey || !listening_.load()) return;
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    first = queue_.empty();
    queue_.push_back(key);
  }
  if (first) Interrupt();
}

void PeerSignals::Run() {
  pthread_setname_np(pthread_self(), "fabu-peers");
  std::chrono::milliseconds backoff{100};
  bool connected_before = false;
  bool reported = false;  // the outage was logged
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    PGconn* conn = PQconnectdb(target_.connect.c_str());
    bool ok = PQstatus(conn) == CONNECTION_OK;
    if (ok) {
      PGresult* listen = PQexec(conn, fmt::format("LISTEN {}", kChannel).c_str());
      ok = PQresultStatus(listen) == PGRES_COMMAND_OK;
      PQclear(listen);
    }
    if (!ok) {
      if (!reported) {
        spdlog::warn("signals to the other coordinators: cannot listen on {}: {}; retrying",
                     target_.description, ConnectionError(conn));
        reported = true;
      }
      PQfinish(conn);
      std::unique_lock lock(mutex_);
      stopped_.wait_for(lock, backoff, [this] { return stopping_; });
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    listening_ = true;
    if (connected_before) {
      spdlog::info("signals to the other coordinators: listening again on {}", target_.description);
      // What the peers sent meanwhile is lost: every waiter looks again.
      on_reconnect_();
    }
    connected_before = true;
    reported = false;
    const int own_backend = PQbackendPID(conn);
    std::vector<std::string> keys;
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) break;
        keys.clear();
        keys.swap(queue_);
      }
      bool sent = true;
      for (std::size_t from = 0; sent && from < keys.size(); from += kBatch) {
        const std::size_t to = std::min(keys.size(), from + kBatch);
        const std::string array = ArrayLiteral(keys, from, to);
        const char* values[1] = {array.c_str()};
        PGresult* r = PQexecParams(
            conn,
            fmt::format("SELECT pg_notify('{}', k) FROM unnest($1::text[]) AS k", kChannel).c_str(),
            1, nullptr, values, nullptr, nullptr, 0);
        sent = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
      }
      if (!sent) {
        spdlog::warn("signals to the other coordinators: sending failed: {}",
                     ConnectionError(conn));
        break;
      }
      pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      ::poll(fds, 2, 1000);
      if ((fds[1].revents & POLLIN) != 0) {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto n = ::read(wake_fd_, &count, sizeof count);
      }
      if (PQconsumeInput(conn) == 0) {
        spdlog::warn("signals to the other coordinators: connection lost: {}",
                     ConnectionError(conn));
        break;
      }
      while (PGnotify* note = PQnotifies(conn)) {
        if (note->be_pid != own_backend) {
          received_.fetch_add(1);
          on_key_(note->extra);
        }
        PQfreemem(note);
      }
      if (PQstatus(conn) != CONNECTION_OK) break;
    }
    listening_ = false;
    PQfinish(conn);
    {
      std::lock_guard lock(mutex_);
      queue_.clear();
    }
  }
}

}  // namespace fabu::coordinator
