// Waves gated on metrics: the checks a go-live plan names (golive.checks,
// docs/plan.md "Checks on metrics"), measured after each wave and before the
// next one starts (procedure §6.1.1(4): a failed release is backed out; §4.5:
// control points).
//
// A check is a query whose answer is one number, and a condition on it:
// - `prometheus`: a PromQL instant query against the Prometheus that
//   config.json names (`checks.prometheus_url`); every series it returns must
//   meet the condition; none is "no data";
// - `http`: a GET of a JSON document and a selector into it ("$.errors.ratio",
//   "$.sites[0].p99") that must lead to a number.
// The query (or URL) may use $WAVE_HOSTS (the wave's host names as a regular
// expression alternation, dots escaped), $RELEASE and $VERSION.
//
// Each check is measured `count` times, `interval` apart, from the moment the
// wave's hosts are all final. A measurement passes, fails (the condition does
// not hold), is inconclusive (no data, not a number) or is an error (the
// query could not be made: unreachable, HTTP status, bad answer; not counted
// toward `count`). The check fails once more than `failure_limit`
// measurements failed (at once: it does not wait for the rest), is
// inconclusive once more than `inconclusive_limit` were inconclusive or more
// than `consecutive_error_limit` errors came in a row, and passes once `count`
// measurements were taken without either. A failed check fails the wave
// (auto_rollback applies); an inconclusive one pauses the rollout until a
// person resumes it (the checks are then measured again from the start). A
// `dry_run` check is measured and recorded, but never holds or fails a wave.
//
// Pure value types and functions; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::coordinator::release {

// "< 0.01": how a measured value is judged.
struct CheckCondition {
  enum class Op { kLess, kLessEqual, kGreater, kGreaterEqual, kEqual, kNotEqual };
  Op op = Op::kLess;
  double bound = 0;

  bool Holds(double value) const;
  std::string ToString() const;  // "< 0.01"
  friend bool operator==(const CheckCondition&, const CheckCondition&) = default;
};

// Parses "< 0.01", "<= 5", "> 0.99", ">= 1", "== 0", "!= 0" (the bound a
// finite decimal number). kInvalidArgument saying what is wrong.
Result<CheckCondition> ParseCheckCondition(std::string_view text);

struct MetricCheck {
  enum class Kind { kPrometheus, kHttp };
  std::string name;  // [a-z0-9-], unique in the plan
  Kind kind = Kind::kPrometheus;
  std::string query;     // kPrometheus: PromQL
  std::string url;       // kHttp: http:// or https://
  std::string selector;  // kHttp: "$", "$.a.b", "$.a[0].b"
  CheckCondition condition;
  std::int64_t interval_seconds = 0;
  std::uint32_t count = 1;
  std::uint32_t failure_limit = 0;
  std::uint32_t inconclusive_limit = 0;
  std::uint32_t consecutive_error_limit = 4;
  bool dry_run = false;

  friend bool operator==(const MetricCheck&, const MetricCheck&) = default;
};

std::string_view CheckKindName(MetricCheck::Kind kind);  // "prometheus", "http"

// The checks of a go-live plan (`golive.checks`, a list; `path` names it in
// errors: "golive.checks[1].condition: ...").
Result<std::vector<MetricCheck>> MetricChecksFromJson(const nlohmann::json& value,
                                                      std::string_view path);
nlohmann::json MetricCheckToJson(const MetricCheck& check);

// What a query may say of the wave it judges.
struct CheckSubject {
  std::vector<std::string> wave_hosts;
  std::string release;
  std::string version;
};

// The query (kPrometheus) or URL (kHttp) with $WAVE_HOSTS, $RELEASE and
// $VERSION replaced. In a URL each value is escaped with `url_escape`
// (platform/http's UrlEscape).
std::string ExpandCheckQuery(const MetricCheck& check, const CheckSubject& subject,
                             const std::function<std::string(std::string_view)>& url_escape);

// One measurement.
enum class MeasureOutcome { kPass, kFail, kInconclusive, kError };
std::string_view MeasureOutcomeName(MeasureOutcome outcome);  // "pass", "fail", ...
std::optional<MeasureOutcome> MeasureOutcomeFromName(std::string_view name);

struct Measurement {
  MeasureOutcome outcome = MeasureOutcome::kError;
  std::optional<double> value;  // the value judged (the worst series' for Prometheus)
  std::string detail;           // why, in words (bounded)
  std::int64_t at = 0;          // Unix seconds
};

// A number as Prometheus and the store write it: decimal (shortest exact
// form), "NaN", "+Inf", "-Inf"; nullopt for anything else.
std::optional<double> ParseMetricNumber(std::string_view text);
std::string MetricNumberText(double value);

// An error measurement (the query could not be made) saying why, its detail
// bounded on a character boundary as every measurement's is.
Measurement MeasurementError(std::string detail);

// Judges Prometheus's answer to an instant query (/api/v1/query): its JSON
// body. A vector: every sample must meet the condition (the value reported
// is the first that does not, else the one nearest to failing); an empty
// vector or NaN is inconclusive; a scalar is judged as is; status "error"
// or another shape is an error.
Measurement JudgePrometheusAnswer(const MetricCheck& check, std::string_view body);

// Judges a JSON document by the check's selector: a number is judged; a
// selector that leads nowhere, or to something not a number, is
// inconclusive; a body that is not JSON is an error.
Measurement JudgeHttpAnswer(const MetricCheck& check, std::string_view body);

// Where a check stands after `measurements` (oldest first) of one round.
struct CheckVerdict {
  enum class State { kMeasuring, kPassed, kFailed, kInconclusive };
  State state = State::kMeasuring;
  std::uint32_t taken = 0;  // pass + fail + inconclusive
  std::uint32_t passed = 0;
  std::uint32_t failed = 0;
  std::uint32_t inconclusive = 0;
  std::uint32_t errors = 0;              // in all
  std::uint32_t consecutive_errors = 0;  // at the end
  std::string summary;                   // "2 of 3 measurements failed (< 0.01; last 0.2)"
};
std::string_view CheckVerdictStateName(CheckVerdict::State state);
CheckVerdict JudgeCheck(const MetricCheck& check, const std::vector<Measurement>& measurements);

// When the next measurement of a check is due: `interval` after the last
// one (or after `from`, when the round began, for the first).
std::int64_t NextMeasurementAt(const MetricCheck& check,
                               const std::vector<Measurement>& measurements, std::int64_t from);

}  // namespace fabu::coordinator::release
