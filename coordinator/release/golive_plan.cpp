#include "coordinator/release/golive_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "coordinator/release/digest.hpp"
#include "coordinator/release/structured_input.hpp"

namespace fabu::coordinator::release {
namespace {

using nlohmann::json;

constexpr std::uint32_t kMaxHostCount = 10'000'000;

// A host amount written as "3", "25%", or the JSON number 3.
Result<HostAmount> AmountFromJson(const json& value, const std::string& path, bool allow_zero) {
  if (value.is_number_integer() || value.is_number_unsigned()) {
    if (value.is_number_integer() && value.get<std::int64_t>() < 0) {
      return FieldError(path, "must not be negative");
    }
    auto parsed = ParseHostAmount(std::to_string(value.get<std::uint64_t>()), allow_zero);
    if (!parsed) return std::unexpected(std::move(parsed.error()).WithContext(path));
    return parsed;
  }
  if (!value.is_string()) {
    return FieldError(path, fmt::format("must be a count (\"3\") or a percent (\"25%\"), got {}",
                                        JsonTypeName(value)));
  }
  auto parsed = ParseHostAmount(value.get<std::string>(), allow_zero);
  if (!parsed) return std::unexpected(std::move(parsed.error()).WithContext(path));
  return parsed;
}

Result<std::int64_t> RequiredDuration(const ObjectReader& reader, std::string_view key,
                                      bool required) {
  auto text = reader.String(key);
  if (!text) return std::unexpected(text.error());
  if (!*text) {
    if (required) return FieldError(reader.PathOf(key), "is required (a duration, e.g. 15m)");
    return 0;
  }
  auto seconds = ParseDuration(**text);
  if (!seconds) return std::unexpected(std::move(seconds.error()).WithContext(reader.PathOf(key)));
  return seconds;
}

Result<Timestamp> RequiredTime(const ObjectReader& reader, std::string_view key) {
  auto text = reader.String(key);
  if (!text) return std::unexpected(text.error());
  if (!*text) {
    return FieldError(reader.PathOf(key),
                      "is required (RFC 3339 with offset, e.g. 2026-12-01T01:00:00+08:00)");
  }
  auto time = ParseRfc3339(**text);
  if (!time) return std::unexpected(std::move(time.error()).WithContext(reader.PathOf(key)));
  return time;
}

}  // namespace

std::uint64_t HostAmount::ResolveCeil(std::uint64_t whole) const {
  if (kind == Kind::kCount) return value;
  return (whole * value + 99) / 100;
}

std::uint64_t HostAmount::ResolveFloor(std::uint64_t whole) const {
  if (kind == Kind::kCount) return value;
  return whole * value / 100;
}

std::string HostAmount::ToString() const {
  return kind == Kind::kPercent ? fmt::format("{}%", value) : fmt::format("{}", value);
}

Result<HostAmount> ParseHostAmount(std::string_view text, bool allow_zero) {
  const auto bad = [&](std::string_view why) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("\"{}\" is not a host count (\"3\") or percent (\"25%\"): {}", text, why));
  };
  HostAmount amount;
  std::string_view number = text;
  if (!number.empty() && number.back() == '%') {
    amount.kind = HostAmount::Kind::kPercent;
    number.remove_suffix(1);
  }
  if (number.empty()) return bad("a number is needed");
  if (number.find_first_not_of("0123456789") != std::string_view::npos) {
    return bad("use decimal digits only");
  }
  if (number.size() > 1 && number.front() == '0') return bad("no leading zeros");
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || ptr != number.data() + number.size() || value > kMaxHostCount) {
    return bad("too large");
  }
  if (amount.kind == HostAmount::Kind::kPercent && value > 100) return bad("at most 100%");
  if (value == 0 && !allow_zero) return bad("must be at least 1");
  amount.value = static_cast<std::uint32_t>(value);
  return amount;
}

Result<GoLivePlan> GoLivePlanFromJson(const json& value, std::string_view path) {
  auto reader = ObjectReader::Open(value, std::string(path));
  if (!reader) return std::unexpected(reader.error());
  if (auto known =
          reader->CheckKnown({"window", "waves", "max_failures", "between_waves", "host_timeout",
                              "auto_rollback", "observe", "observe_interval", "checks"});
      !known) {
    return std::unexpected(known.error());
  }
  GoLivePlan plan;

  // window
  const json* window = reader->Find("window");
  if (window == nullptr) {
    return FieldError(reader->PathOf("window"), "is required ({\"start\": ..., \"end\": ...})");
  }
  auto window_reader = ObjectReader::Open(*window, reader->PathOf("window"));
  if (!window_reader) return std::unexpected(window_reader.error());
  if (auto known = window_reader->CheckKnown({"start", "end"}); !known) {
    return std::unexpected(known.error());
  }
  auto start = RequiredTime(*window_reader, "start");
  if (!start) return std::unexpected(start.error());
  auto end = RequiredTime(*window_reader, "end");
  if (!end) return std::unexpected(end.error());
  if (end->seconds <= start->seconds) {
    return FieldError(
        window_reader->PathOf("end"),
        fmt::format("must be after window.start ({} is not after {})", end->text, start->text));
  }
  plan.window = MaintenanceWindow{std::move(*start), std::move(*end)};

  // waves
  const std::string waves_path = reader->PathOf("waves");
  const json* waves = reader->Find("waves");
  if (waves == nullptr) {
    return FieldError(waves_path, "is required (e.g. [\"1\", \"25%\", \"100%\"])");
  }
  if (!waves->is_array()) {
    return FieldError(waves_path, fmt::format("must be a list, got {}", JsonTypeName(*waves)));
  }
  if (waves->empty()) return FieldError(waves_path, "needs at least one wave (e.g. [\"100%\"])");
  for (std::size_t i = 0; i < waves->size(); ++i) {
    const std::string wave_path = IndexPath(waves_path, i);
    auto amount = AmountFromJson((*waves)[i], wave_path, /*allow_zero=*/false);
    if (!amount) return std::unexpected(amount.error());
    // Waves are cumulative: within one kind each must be larger than the last.
    for (std::size_t j = plan.waves.size(); j-- > 0;) {
      if (plan.waves[j].kind != amount->kind) continue;
      if (amount->value <= plan.waves[j].value) {
        return FieldError(wave_path,
                          fmt::format("{} must be larger than the earlier wave {} (waves are "
                                      "cumulative and increasing)",
                                      amount->ToString(), plan.waves[j].ToString()));
      }
      break;
    }
    plan.waves.push_back(*amount);
  }
  const HostAmount& last = plan.waves.back();
  if (last.kind == HostAmount::Kind::kPercent && last.value != 100) {
    return FieldError(IndexPath(waves_path, plan.waves.size() - 1),
                      fmt::format("the last wave must cover every target: \"100%\", not \"{}\"",
                                  last.ToString()));
  }

  // max_failures
  const json* max_failures = reader->Find("max_failures");
  if (max_failures == nullptr) {
    return FieldError(reader->PathOf("max_failures"),
                      "is required (failures tolerated per wave, e.g. \"0\" or \"10%\")");
  }
  auto failures = AmountFromJson(*max_failures, reader->PathOf("max_failures"), true);
  if (!failures) return std::unexpected(failures.error());
  plan.max_failures = *failures;

  // between_waves
  auto between = reader->String("between_waves");
  if (!between) return std::unexpected(between.error());
  if (!*between) {
    return FieldError(reader->PathOf("between_waves"),
                      "is required (a pause such as \"5m\", or \"gate\")");
  }
  if (**between == "gate") {
    plan.gate_between_waves = true;
  } else {
    auto seconds = ParseDuration(**between);
    if (!seconds) {
      return FieldError(reader->PathOf("between_waves"),
                        fmt::format("{} (or \"gate\")", seconds.error().message()));
    }
    plan.between_waves_seconds = *seconds;
  }

  // host_timeout
  auto host_timeout = RequiredDuration(*reader, "host_timeout", true);
  if (!host_timeout) return std::unexpected(host_timeout.error());
  if (*host_timeout <= 0)
    return FieldError(reader->PathOf("host_timeout"), "must be longer than 0");
  plan.host_timeout_seconds = *host_timeout;

  // auto_rollback
  auto auto_rollback = reader->Bool("auto_rollback");
  if (!auto_rollback) return std::unexpected(auto_rollback.error());
  if (!*auto_rollback)
    return FieldError(reader->PathOf("auto_rollback"), "is required (true or false)");
  plan.auto_rollback = **auto_rollback;

  // observe, observe_interval
  auto observe = RequiredDuration(*reader, "observe", false);
  if (!observe) return std::unexpected(observe.error());
  auto interval = RequiredDuration(*reader, "observe_interval", false);
  if (!interval) return std::unexpected(interval.error());
  if (*observe > 0 && *interval <= 0) {
    return FieldError(reader->PathOf("observe_interval"),
                      "must be set when observe is longer than 0 (e.g. \"30s\")");
  }
  if (*observe > 0 && *interval > *observe) {
    return FieldError(
        reader->PathOf("observe_interval"),
        fmt::format("must not be longer than observe ({})", FormatDuration(*observe)));
  }
  plan.observe_seconds = *observe;
  plan.observe_interval_seconds = *interval;

  // checks
  if (const json* checks = reader->Find("checks"); checks != nullptr) {
    auto parsed = MetricChecksFromJson(*checks, reader->PathOf("checks"));
    if (!parsed) return std::unexpected(parsed.error());
    plan.checks = std::move(*parsed);
  }
  return plan;
}

json GoLivePlanToJson(const GoLivePlan& plan) {
  json waves = json::array();
  for (const HostAmount& wave : plan.waves) waves.push_back(wave.ToString());
  json out{
      {"window", {{"start", plan.window.start.text}, {"end", plan.window.end.text}}},
      {"waves", std::move(waves)},
      {"max_failures", plan.max_failures.ToString()},
      {"between_waves",
       plan.gate_between_waves ? std::string("gate") : FormatDuration(plan.between_waves_seconds)},
      {"host_timeout", FormatDuration(plan.host_timeout_seconds)},
      {"auto_rollback", plan.auto_rollback},
      {"observe", FormatDuration(plan.observe_seconds)},
      {"observe_interval", FormatDuration(plan.observe_interval_seconds)},
  };
  // Only when there are checks, so that the digest of a plan without any
  // stays what it was before checks existed.
  if (!plan.checks.empty()) {
    json checks = json::array();
    for (const MetricCheck& check : plan.checks) checks.push_back(MetricCheckToJson(check));
    out["checks"] = std::move(checks);
  }
  return out;
}

Result<std::string> GoLiveDigest(const GoLivePlan& plan) {
  return Sha256Hex(CanonicalJsonText(GoLivePlanToJson(plan)));
}

Result<std::vector<std::uint64_t>> WaveSizes(const std::vector<HostAmount>& waves,
                                             std::uint64_t target_count) {
  if (waves.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "a go-live plan needs at least one wave");
  }
  const HostAmount& last = waves.back();
  if (last.ResolveCeil(target_count) < target_count) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("the last wave ({}) does not cover all {} target hosts; end the "
                            "waves with \"100%\"",
                            last.ToString(), target_count));
  }
  std::vector<std::uint64_t> sizes;
  std::uint64_t assigned = 0;
  for (const HostAmount& wave : waves) {
    if (assigned == target_count) break;  // nothing left for later waves
    std::uint64_t wanted = std::min(wave.ResolveCeil(target_count), target_count);
    wanted = std::max(wanted, assigned + 1);
    sizes.push_back(wanted);
    assigned = wanted;
  }
  return sizes;
}

std::vector<std::uint64_t> FailureThresholds(const std::vector<std::uint64_t>& cumulative_sizes,
                                             const HostAmount& max_failures) {
  std::vector<std::uint64_t> thresholds;
  std::uint64_t previous = 0;
  for (std::uint64_t cumulative : cumulative_sizes) {
    const std::uint64_t wave = cumulative - previous;
    thresholds.push_back(std::min(max_failures.ResolveFloor(wave), wave));
    previous = cumulative;
  }
  return thresholds;
}

std::vector<Wave> WavesOf(const std::vector<std::uint64_t>& cumulative_sizes,
                          const std::vector<std::uint64_t>& thresholds) {
  std::vector<Wave> waves;
  for (std::size_t i = 0; i < cumulative_sizes.size() && i < thresholds.size(); ++i) {
    const std::uint64_t before = i > 0 ? cumulative_sizes[i - 1] : 0;
    waves.push_back({cumulative_sizes[i], cumulative_sizes[i] - before, thresholds[i]});
  }
  return waves;
}

LateJoin JoinLate(const std::vector<Wave>& waves, long long current_wave,
                  const HostAmount& max_failures) {
  LateJoin out;
  const std::size_t next = current_wave < 0 ? 0 : static_cast<std::size_t>(current_wave) + 1;
  std::vector<std::uint64_t> sizes;
  for (const Wave& wave : waves) sizes.push_back(wave.through);
  if (next >= sizes.size()) sizes.push_back(sizes.empty() ? 0 : sizes.back());
  for (std::size_t w = next; w < sizes.size(); ++w) ++sizes[w];
  const std::vector<std::uint64_t> resolved = FailureThresholds(sizes, max_failures);
  std::vector<std::uint64_t> thresholds;
  for (std::size_t w = 0; w < sizes.size(); ++w) {
    thresholds.push_back(w < next && w < waves.size() ? waves[w].max_failures : resolved[w]);
  }
  out.waves = WavesOf(sizes, thresholds);
  out.wave = next;
  out.catch_up = next >= waves.size();
  return out;
}

Result<std::vector<Wave>> RolloutWaves(const std::vector<HostAmount>& waves,
                                       std::uint64_t target_count, const HostAmount& max_failures) {
  auto sizes = WaveSizes(waves, target_count);
  if (!sizes) return std::unexpected(sizes.error());
  return WavesOf(*sizes, FailureThresholds(*sizes, max_failures));
}

}  // namespace fabu::coordinator::release
