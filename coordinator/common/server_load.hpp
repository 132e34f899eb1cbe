// What the HTTP server carries at this moment, published for the metrics
// (metrics/metrics.hpp): the server writes it on its I/O thread whenever one
// of its own counts changes; GET /metrics reads it on a worker. Owned by the
// daemon, which outlives both. Relaxed atomics: each figure is a gauge on its
// own, none is read together with another.
#pragma once

#include <atomic>
#include <cstdint>

namespace fabu::coordinator {

struct ServerLoad {
  std::atomic<std::uint64_t> connections{0};       // open TCP connections
  std::atomic<std::uint64_t> downloads{0};         // package downloads being written
  std::atomic<std::uint64_t> queued_downloads{0};  // waiting for one of max_downloads
  std::atomic<std::uint64_t> package_bytes{0};     // package bytes written since start
};

}  // namespace fabu::coordinator
