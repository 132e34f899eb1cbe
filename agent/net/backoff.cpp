#include "agent/net/backoff.hpp"

#include <algorithm>
#include <memory>
#include <random>

namespace fabu::agent {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap, Random random)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      cap_(std::max(cap, initial_)),
      random_(std::move(random)) {}

std::chrono::milliseconds Backoff::Next(std::optional<std::chrono::seconds> retry_after) {
  // Double until the cap; stop counting once there so the shift never overflows.
  std::chrono::milliseconds nominal = initial_;
  for (int i = 0; i < doublings_ && nominal < cap_; ++i) nominal *= 2;
  nominal = std::min(nominal, cap_);
  if (nominal < cap_) ++doublings_;
  const double r = std::clamp(random_(), 0.0, 1.0);
  const auto half = nominal.count() / 2;
  const std::chrono::milliseconds delay(
      half +
      static_cast<std::chrono::milliseconds::rep>(r * static_cast<double>(nominal.count() - half)));
  if (!retry_after || *retry_after <= std::chrono::seconds(0)) return delay;
  const std::chrono::milliseconds asked = *retry_after;
  return std::max(delay,
                  asked + std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(
                              r * static_cast<double>(asked.count()) / 2)));
}

Backoff::Random Backoff::SystemRandom() {
  auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
}

}  // namespace fabu::agent
