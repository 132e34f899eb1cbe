#include "coordinator/release/metric_check.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>

#include "coordinator/release/structured_input.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator::release {
namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxChecks = 16;
constexpr std::size_t kMaxQuery = 4096;
constexpr std::size_t kMaxUrl = 2048;
constexpr std::size_t kMaxDetail = 300;
constexpr std::uint32_t kMaxCount = 1000;

std::string Bounded(std::string text) {
  if (text.size() > kMaxDetail) {
    std::size_t cut = kMaxDetail;
    // Never cut a UTF-8 sequence in its middle.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text += "...";
  }
  return text;
}

std::string ValueText(double value) { return fmt::format("{:.6g}", value); }

Result<std::uint32_t> Limit(const ObjectReader& reader, std::string_view key,
                            std::uint32_t fallback, std::uint32_t least) {
  const json* value = reader.Find(key);
  if (value == nullptr) return fallback;
  if (!value->is_number_integer() || value->get<std::int64_t>() < least ||
      value->get<std::int64_t>() > kMaxCount) {
    return FieldError(reader.PathOf(key),
                      fmt::format("must be a whole number from {} to {}", least, kMaxCount));
  }
  return static_cast<std::uint32_t>(value->get<std::int64_t>());
}

// "$.a.b[0]" as the steps it takes: names and indexes.
struct Step {
  std::string name;
  std::optional<std::size_t> index;
};
Result<std::vector<Step>> ParseSelector(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}\" is not a selector such as \"$.errors.ratio\" or "
                            "\"$.sites[0].p99\": {}",
                            text, why));
  };
  if (text.empty() || text.front() != '$') return bad("it must start with $");
  std::vector<Step> steps;
  std::size_t i = 1;
  while (i < text.size()) {
    if (text[i] == '.') {
      const std::size_t start = ++i;
      while (i < text.size() && text[i] != '.' && text[i] != '[') ++i;
      if (i == start) return bad("a name is needed after each dot");
      steps.push_back({std::string(text.substr(start, i - start)), std::nullopt});
    } else if (text[i] == '[') {
      const std::size_t close = text.find(']', i);
      if (close == std::string_view::npos) return bad("a [ is not closed");
      const std::string_view digits = text.substr(i + 1, close - i - 1);
      std::size_t index = 0;
      auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
      if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
        return bad("an index is a whole number, [0]");
      }
      steps.push_back({"", index});
      i = close + 1;
    } else {
      return bad(fmt::format("unexpected \"{}\"", text[i]));
    }
  }
  return steps;
}

std::string RegexOfHosts(const std::vector<std::string>& hosts) {
  std::string out;
  for (const std::string& host : hosts) {
    if (!out.empty()) out += '|';
    for (char c : host) {
      // Host names follow DNS rules (letters, digits, '-', '.'): only the
      // dot means something in a regular expression. In a PromQL string
      // the backslash is itself escaped.
      if (c == '.') {
        out += "\\\\.";
      } else {
        out += c;
      }
    }
  }
  return out;
}

void ReplaceAll(std::string& text, std::string_view from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

Measurement Judged(const MetricCheck& check, double value, std::string_view what) {
  Measurement m;
  m.value = value;
  if (std::isnan(value)) {
    m.outcome = MeasureOutcome::kInconclusive;
    m.detail = Bounded(fmt::format("{} is NaN", what));
    return m;
  }
  m.outcome = check.condition.Holds(value) ? MeasureOutcome::kPass : MeasureOutcome::kFail;
  m.detail = Bounded(fmt::format("{} = {} ({} {})", what, ValueText(value),
                                 m.outcome == MeasureOutcome::kPass ? "meets" : "does not meet",
                                 check.condition.ToString()));
  return m;
}

Measurement Inconclusive(std::string detail) {
  Measurement m;
  m.outcome = MeasureOutcome::kInconclusive;
  m.detail = Bounded(std::move(detail));
  return m;
}

}  // namespace

std::optional<double> ParseMetricNumber(std::string_view text) {
  if (text == "NaN") return std::nan("");
  if (text == "+Inf" || text == "Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::string MetricNumberText(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);  // shortest exact form
}

Measurement MeasurementError(std::string detail) {
  Measurement m;
  m.outcome = MeasureOutcome::kError;
  m.detail = Bounded(std::move(detail));
  return m;
}

bool CheckCondition::Holds(double value) const {
  switch (op) {
    case Op::kLess:
      return value < bound;
    case Op::kLessEqual:
      return value <= bound;
    case Op::kGreater:
      return value > bound;
    case Op::kGreaterEqual:
      return value >= bound;
    case Op::kEqual:
      return value == bound;
    case Op::kNotEqual:
      return value != bound;
  }
  return false;
}

std::string CheckCondition::ToString() const {
  static constexpr std::string_view kOps[] = {"<", "<=", ">", ">=", "==", "!="};
  return fmt::format("{} {}", kOps[static_cast<int>(op)], bound);  // shortest exact form
}

Result<CheckCondition> ParseCheckCondition(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}\" is not a condition such as \"< 0.01\": {}", text, why));
  };
  static constexpr std::pair<std::string_view, CheckCondition::Op> kOps[] = {
      {"<=", CheckCondition::Op::kLessEqual}, {">=", CheckCondition::Op::kGreaterEqual},
      {"==", CheckCondition::Op::kEqual},     {"!=", CheckCondition::Op::kNotEqual},
      {"<", CheckCondition::Op::kLess},       {">", CheckCondition::Op::kGreater},
  };
  std::string_view rest = text;
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  CheckCondition condition;
  bool found = false;
  for (const auto& [symbol, op] : kOps) {
    if (rest.starts_with(symbol)) {
      condition.op = op;
      rest.remove_prefix(symbol.size());
      found = true;
      break;
    }
  }
  if (!found) return bad("it starts with <, <=, >, >=, == or !=");
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  const std::optional<double> bound = ParseMetricNumber(rest);
  if (!bound || !std::isfinite(*bound)) return bad("a finite decimal number follows the operator");
  condition.bound = *bound;
  return condition;
}

std::string_view CheckKindName(MetricCheck::Kind kind) {
  return kind == MetricCheck::Kind::kHttp ? "http" : "prometheus";
}

Result<std::vector<MetricCheck>> MetricChecksFromJson(const json& value, std::string_view path) {
  if (!value.is_array()) {
    return FieldError(path, fmt::format("must be a list, got {}", JsonTypeName(value)));
  }
  if (value.size() > kMaxChecks) {
    return FieldError(path, fmt::format("at most {} checks", kMaxChecks));
  }
  std::vector<MetricCheck> checks;
  std::set<std::string> names;
  for (std::size_t i = 0; i < value.size(); ++i) {
    auto reader = ObjectReader::Open(value[i], IndexPath(path, i));
    if (!reader) return std::unexpected(reader.error());
    if (auto known = reader->CheckKnown({"name", "type", "query", "url", "select", "condition",
                                         "interval", "count", "failure_limit", "inconclusive_limit",
                                         "consecutive_error_limit", "dry_run"});
        !known) {
      return std::unexpected(known.error());
    }
    MetricCheck check;
    auto name = reader->String("name");
    if (!name) return std::unexpected(name.error());
    if (!*name || (*name)->empty() || (*name)->size() > 40 ||
        (*name)->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
      return FieldError(reader->PathOf("name"),
                        "is required: 1 to 40 of a-z, 0-9 and - (e.g. \"error-ratio\")");
    }
    if (!names.insert(**name).second) {
      return FieldError(reader->PathOf("name"), fmt::format("\"{}\" is used twice", **name));
    }
    check.name = **name;

    auto type = reader->String("type");
    if (!type) return std::unexpected(type.error());
    if (!*type || (**type != "prometheus" && **type != "http")) {
      return FieldError(reader->PathOf("type"), "is required: \"prometheus\" or \"http\"");
    }
    check.kind = **type == "http" ? MetricCheck::Kind::kHttp : MetricCheck::Kind::kPrometheus;

    auto query = reader->String("query");
    if (!query) return std::unexpected(query.error());
    auto url = reader->String("url");
    if (!url) return std::unexpected(url.error());
    auto select = reader->String("select");
    if (!select) return std::unexpected(select.error());
    if (check.kind == MetricCheck::Kind::kPrometheus) {
      if (!*query || (*query)->empty() || (*query)->size() > kMaxQuery) {
        return FieldError(reader->PathOf("query"),
                          fmt::format("is required for a prometheus check: PromQL of at most {} "
                                      "characters",
                                      kMaxQuery));
      }
      if (*url || *select) {
        return FieldError(reader->PathOf(*url ? "url" : "select"),
                          "belongs to an http check, not a prometheus one");
      }
      check.query = **query;
    } else {
      if (!*url || (*url)->size() > kMaxUrl ||
          !((*url)->starts_with("http://") || (*url)->starts_with("https://"))) {
        return FieldError(reader->PathOf("url"),
                          "is required for an http check: an http:// or https:// URL");
      }
      if (*query) {
        return FieldError(reader->PathOf("query"),
                          "belongs to a prometheus check, not an http one");
      }
      check.url = **url;
      check.selector = *select ? **select : "$";
      if (auto steps = ParseSelector(check.selector); !steps) {
        return FieldError(reader->PathOf("select"), steps.error().message());
      }
    }

    auto condition = reader->String("condition");
    if (!condition) return std::unexpected(condition.error());
    if (!*condition) {
      return FieldError(reader->PathOf("condition"), "is required (e.g. \"< 0.01\")");
    }
    auto parsed = ParseCheckCondition(**condition);
    if (!parsed) return FieldError(reader->PathOf("condition"), parsed.error().message());
    check.condition = *parsed;

    auto interval = reader->String("interval");
    if (!interval) return std::unexpected(interval.error());
    if (!*interval) return FieldError(reader->PathOf("interval"), "is required (e.g. \"30s\")");
    auto seconds = protocol::ParseDuration(**interval);
    if (!seconds) return FieldError(reader->PathOf("interval"), seconds.error().message());
    if (*seconds <= 0) return FieldError(reader->PathOf("interval"), "must be longer than 0");
    check.interval_seconds = *seconds;

    auto count = Limit(*reader, "count", 1, 1);
    if (!count) return std::unexpected(count.error());
    check.count = *count;
    auto failures = Limit(*reader, "failure_limit", 0, 0);
    if (!failures) return std::unexpected(failures.error());
    check.failure_limit = *failures;
    auto inconclusive = Limit(*reader, "inconclusive_limit", 0, 0);
    if (!inconclusive) return std::unexpected(inconclusive.error());
    check.inconclusive_limit = *inconclusive;
    auto errors = Limit(*reader, "consecutive_error_limit", 4, 0);
    if (!errors) return std::unexpected(errors.error());
    check.consecutive_error_limit = *errors;
    if (check.failure_limit >= check.count) {
      return FieldError(
          reader->PathOf("failure_limit"),
          fmt::format("must be below count ({}), or the check can never fail", check.count));
    }

    auto dry_run = reader->Bool("dry_run");
    if (!dry_run) return std::unexpected(dry_run.error());
    check.dry_run = dry_run->value_or(false);
    checks.push_back(std::move(check));
  }
  return checks;
}

json MetricCheckToJson(const MetricCheck& check) {
  json out = {{"name", check.name},
              {"type", CheckKindName(check.kind)},
              {"condition", check.condition.ToString()},
              {"interval", protocol::FormatDuration(check.interval_seconds)},
              {"count", check.count},
              {"failure_limit", check.failure_limit},
              {"inconclusive_limit", check.inconclusive_limit},
              {"consecutive_error_limit", check.consecutive_error_limit},
              {"dry_run", check.dry_run}};
  if (check.kind == MetricCheck::Kind::kPrometheus) {
    out["query"] = check.query;
  } else {
    out["url"] = check.url;
    out["select"] = check.selector;
  }
  return out;
}

std::string ExpandCheckQuery(const MetricCheck& check, const CheckSubject& subject,
                             const std::function<std::string(std::string_view)>& url_escape) {
  const bool in_url = check.kind == MetricCheck::Kind::kHttp;
  std::string text = in_url ? check.url : check.query;
  const auto value = [&](const std::string& raw) { return in_url ? url_escape(raw) : raw; };
  ReplaceAll(text, "$WAVE_HOSTS",
             in_url ? url_escape(fmt::format("{}", fmt::join(subject.wave_hosts, "|")))
                    : RegexOfHosts(subject.wave_hosts));
  ReplaceAll(text, "$RELEASE", value(subject.release));
  ReplaceAll(text, "$VERSION", value(subject.version));
  return text;
}

std::string_view MeasureOutcomeName(MeasureOutcome outcome) {
  switch (outcome) {
    case MeasureOutcome::kPass:
      return "pass";
    case MeasureOutcome::kFail:
      return "fail";
    case MeasureOutcome::kInconclusive:
      return "inconclusive";
    case MeasureOutcome::kError:
      return "error";
  }
  return "error";
}

std::optional<MeasureOutcome> MeasureOutcomeFromName(std::string_view name) {
  for (MeasureOutcome o : {MeasureOutcome::kPass, MeasureOutcome::kFail,
                           MeasureOutcome::kInconclusive, MeasureOutcome::kError}) {
    if (MeasureOutcomeName(o) == name) return o;
  }
  return std::nullopt;
}

Measurement JudgePrometheusAnswer(const MetricCheck& check, std::string_view body) {
  const json answer = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded() || !answer.is_object()) {
    return MeasurementError("Prometheus's answer is not JSON");
  }
  // A member that is a string, or "" (json::value throws on another type).
  const auto text = [](const json& object, const char* key) {
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (text(answer, "status") != "success") {
    const std::string error = text(answer, "error");
    return MeasurementError(fmt::format("Prometheus refused the query: {}",
                                        error.empty() ? std::string("no reason given") : error));
  }
  const json data = answer.value("data", json::object());
  const std::string type = data.is_object() ? text(data, "resultType") : "";
  const json result = data.is_object() ? data.value("result", json()) : json();
  const auto sample_value = [](const json& pair) -> std::optional<double> {
    if (!pair.is_array() || pair.size() != 2 || !pair[1].is_string()) return std::nullopt;
    return ParseMetricNumber(pair[1].get<std::string>());
  };
  if (type == "scalar") {
    const std::optional<double> value = sample_value(result);
    if (!value) return MeasurementError("Prometheus's scalar answer holds no number");
    return Judged(check, *value, "the query's value");
  }
  if (type != "vector" || !result.is_array()) {
    return MeasurementError(fmt::format("the query gave a {}, not an instant vector or a scalar",
                                        type.empty() ? std::string("malformed answer") : type));
  }
  if (result.empty()) return Inconclusive("no data: the query matched no series");
  std::optional<Measurement> worst;
  double nearest = 0;
  for (const json& series : result) {
    if (!series.is_object())
      return MeasurementError("Prometheus's answer holds a series that is no object");
    const std::optional<double> value = sample_value(series.value("value", json()));
    if (!value) return MeasurementError("a series of Prometheus's answer holds no number");
    std::string labels;
    const json metric = series.value("metric", json::object());
    for (const auto& [key, label] : metric.items()) {
      if (!label.is_string()) continue;
      labels +=
          fmt::format("{}{}=\"{}\"", labels.empty() ? "" : ",", key, label.get<std::string>());
    }
    Measurement m =
        Judged(check, *value, labels.empty() ? "the query's value" : fmt::format("{{{}}}", labels));
    if (m.outcome != MeasureOutcome::kPass) return m;  // the first that does not meet it
    const double distance = std::abs(*value - check.condition.bound);
    if (!worst || distance < nearest) {
      nearest = distance;
      worst = std::move(m);
    }
  }
  if (result.size() > 1) {
    worst->detail =
        Bounded(fmt::format("{} series, each meets it; nearest: {}", result.size(), worst->detail));
  }
  return *worst;
}

Measurement JudgeHttpAnswer(const MetricCheck& check, std::string_view body) {
  const json answer = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded()) return MeasurementError("the answer is not JSON");
  auto steps = ParseSelector(check.selector);
  if (!steps) return MeasurementError(steps.error().message());
  const json* at = &answer;
  for (const Step& step : *steps) {
    if (step.index) {
      if (!at->is_array() || *step.index >= at->size()) {
        return Inconclusive(
            fmt::format("{}: no element [{}] in the answer", check.selector, *step.index));
      }
      at = &(*at)[*step.index];
    } else {
      if (!at->is_object() || !at->contains(step.name)) {
        return Inconclusive(
            fmt::format("{}: no member \"{}\" in the answer", check.selector, step.name));
      }
      at = &(*at)[step.name];
    }
  }
  if (!at->is_number()) {
    return Inconclusive(fmt::format("{} is {}, not a number", check.selector, JsonTypeName(*at)));
  }
  return Judged(check, at->get<double>(), check.selector);
}

std::string_view CheckVerdictStateName(CheckVerdict::State state) {
  switch (state) {
    case CheckVerdict::State::kMeasuring:
      return "measuring";
    case CheckVerdict::State::kPassed:
      return "passed";
    case CheckVerdict::State::kFailed:
      return "failed";
    case CheckVerdict::State::kInconclusive:
      return "inconclusive";
  }
  return "measuring";
}

CheckVerdict JudgeCheck(const MetricCheck& check, const std::vector<Measurement>& measurements) {
  CheckVerdict v;
  const Measurement* last = nullptr;
  for (const Measurement& m : measurements) {
    last = &m;
    switch (m.outcome) {
      case MeasureOutcome::kPass:
        ++v.passed;
        v.consecutive_errors = 0;
        break;
      case MeasureOutcome::kFail:
        ++v.failed;
        v.consecutive_errors = 0;
        break;
      case MeasureOutcome::kInconclusive:
        ++v.inconclusive;
        v.consecutive_errors = 0;
        break;
      case MeasureOutcome::kError:
        ++v.errors;
        ++v.consecutive_errors;
        break;
    }
    v.taken = v.passed + v.failed + v.inconclusive;
    if (v.failed > check.failure_limit) {
      v.state = CheckVerdict::State::kFailed;
      break;
    }
    if (v.inconclusive > check.inconclusive_limit ||
        v.consecutive_errors > check.consecutive_error_limit) {
      v.state = CheckVerdict::State::kInconclusive;
      break;
    }
    if (v.taken >= check.count) {
      v.state = CheckVerdict::State::kPassed;
      break;
    }
  }
  const std::string last_text = last != nullptr ? fmt::format("; last: {}", last->detail) : "";
  switch (v.state) {
    case CheckVerdict::State::kMeasuring:
      v.summary = fmt::format("{} of {} measurement(s) taken{}", v.taken, check.count, last_text);
      break;
    case CheckVerdict::State::kPassed:
      v.summary = fmt::format("{} of {} measurement(s) met {}", v.passed, v.taken,
                              check.condition.ToString());
      if (v.failed > 0)
        v.summary += fmt::format(", {} failed (limit {})", v.failed, check.failure_limit);
      break;
    case CheckVerdict::State::kFailed:
      v.summary = fmt::format("{} measurement(s) failed, over failure_limit {}{}", v.failed,
                              check.failure_limit, last_text);
      break;
    case CheckVerdict::State::kInconclusive:
      v.summary = v.consecutive_errors > check.consecutive_error_limit
                      ? fmt::format("{} error(s) in a row, over consecutive_error_limit {}{}",
                                    v.consecutive_errors, check.consecutive_error_limit, last_text)
                      : fmt::format("{} inconclusive measurement(s), over inconclusive_limit {}{}",
                                    v.inconclusive, check.inconclusive_limit, last_text);
      break;
  }
  return v;
}

std::int64_t NextMeasurementAt(const MetricCheck& check,
                               const std::vector<Measurement>& measurements, std::int64_t from) {
  const std::int64_t last = measurements.empty() ? from : measurements.back().at;
  return last + check.interval_seconds;
}

}  // namespace fabu::coordinator::release
