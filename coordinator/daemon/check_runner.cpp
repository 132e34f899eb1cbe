#include "coordinator/daemon/check_runner.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "coordinator/audit/audit_log.hpp"
#include "coordinator/common/webhook_allow.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/deploy/rollout_engine.hpp"
#include "platform/http/http_client.hpp"

namespace fabu::coordinator {
namespace {

// What a measurement keeps of an answer: enough for Prometheus's JSON of a
// few thousand series, not a whole page someone pointed a check at.
constexpr std::size_t kMaxAnswerBytes = 4 * 1024 * 1024;

}  // namespace

CheckRunner::CheckRunner(Store& store, CheckRunnerSettings settings,
                         release::PlanParseOptions options, WakeupHub& wakeups)
    : store_(store),
      settings_(std::move(settings)),
      options_(std::move(options)),
      wakeups_(wakeups) {
  platform::HttpClientOptions http;
  http.allow_plain_http = true;  // a Prometheus on the operator's network is often plain http
  http.connect_timeout = settings_.timeout;
  auto client = platform::HttpClient::Create(std::move(http));
  if (client) {
    http_ = std::make_unique<platform::HttpClient>(std::move(*client));
  } else {
    spdlog::error("go-live checks: no HTTP client: {}", client.error().message());
  }
}

CheckRunner::~CheckRunner() = default;

release::Measurement CheckRunner::Measure(const DueMeasurement& due) {
  const release::MetricCheck& check = due.check;
  const std::string target = release::ExpandCheckQuery(
      check, due.subject, [](std::string_view text) { return platform::UrlEscape(text); });
  std::string url;
  if (check.kind == release::MetricCheck::Kind::kPrometheus) {
    if (settings_.prometheus_url.empty()) {
      return release::MeasurementError(
          "no Prometheus is configured: set checks.prometheus_url in config.json and restart");
    }
    url = settings_.prometheus_url + "api/v1/query?query=" + platform::UrlEscape(target);
  } else {
    if (auto ok = CheckWebhookTarget(target, settings_.allow); !ok) {
      return release::MeasurementError(
          fmt::format("{} is not under checks.allow in config.json", target));
    }
    url = target;
  }
  if (!http_) return release::MeasurementError("no HTTP client (see the coordinator's log)");
  platform::HttpRequest request;
  request.method = "GET";
  request.url = url;
  request.headers = {"Accept: application/json"};
  request.timeout = settings_.timeout;
  request.max_response_bytes = kMaxAnswerBytes;
  auto answer = http_->Send(request);
  if (!answer) return release::MeasurementError(answer.error().message());
  release::Measurement m;
  // Prometheus answers a bad query 400 and an overloaded one 503 with its
  // JSON error: judged from the body either way.
  if (check.kind == release::MetricCheck::Kind::kPrometheus) {
    if (answer->status != 200 && answer->body.empty()) {
      return release::MeasurementError(fmt::format("Prometheus answered HTTP {}", answer->status));
    }
    m = release::JudgePrometheusAnswer(check, answer->body);
  } else {
    if (answer->status != 200) {
      return release::MeasurementError(
          fmt::format("GET {} answered HTTP {}", target, answer->status));
    }
    m = release::JudgeHttpAnswer(check, answer->body);
  }
  return m;
}

void CheckRunner::Tick() {
  try {
    const UnixSeconds now = store_.clock().Seconds();
    auto due = store_.Read([&](soci::session& sql) -> Result<std::vector<DueMeasurement>> {
      return DueMeasurements(sql, now, options_);
    });
    if (!due) {
      spdlog::error("go-live checks: reading what is due: {}", due.error().message());
      return;
    }
    for (const DueMeasurement& d : *due) {
      release::Measurement m = Measure(d);
      m.at = store_.clock().Seconds();
      Wakeups wakeups;
      auto written = store_.Write(AuditOrigin{"fabu-coordinator", "system", "checks", "local"},
                                  [&](Transaction& tx) {
                                    wakeups = {};
                                    RecordMeasurement(tx, d, m);
                                    AdvanceRollout(tx, d.release_id, m.at, options_, wakeups);
                                    return Result<void>{};
                                  });
      if (!written) {
        spdlog::error("go-live check {} of {}: recording a measurement: {}", d.check.name,
                      d.release_id, written.error().message());
        continue;
      }
      WakeHosts(wakeups_, wakeups);
      spdlog::log(
          m.outcome == release::MeasureOutcome::kPass ? spdlog::level::debug : spdlog::level::info,
          "go-live check {} of {} (wave {}): {}: {}", d.check.name, d.release_id, d.wave + 1,
          release::MeasureOutcomeName(m.outcome), m.detail);
    }
  } catch (const std::exception& e) {
    spdlog::error("go-live checks: {}", e.what());
  }
}

}  // namespace fabu::coordinator
