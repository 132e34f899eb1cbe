#include "coordinator/deploy/rollout_checks.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <optional>
#include <tuple>

#include "coordinator/audit/audit_log.hpp"
#include "coordinator/deploy/rollout_rows.hpp"
#include "coordinator/store/release_records.hpp"
#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator {
namespace {

using json = nlohmann::json;

std::string ValueText(const std::optional<double>& value) {
  return value ? release::MetricNumberText(*value) : std::string();
}

std::optional<double> ValueOf(const std::string& text) {
  return text.empty() ? std::nullopt : release::ParseMetricNumber(text);
}

json ValueJson(const std::optional<double>& value) {
  if (!value || !std::isfinite(*value)) return nullptr;
  return *value;
}

// The rollouts whose current wave ended and may be measured.
struct MeasuredWave {
  std::string release_id;
  long long wave = 0;
  long long done_at = 0;
};

std::vector<MeasuredWave> WavesToMeasure(soci::session& sql) {
  std::vector<MeasuredWave> out;
  MeasuredWave w;
  soci::statement st =
      OneShot(sql,
              "SELECT o.release_id, o.current_wave, o.wave_done_at FROM rollouts o "
              "JOIN releases r ON r.id = o.release_id WHERE r.state = 'deploying' AND "
              "o.finished = 0 AND o.aborted = 0 AND o.current_wave >= 0 AND "
              "o.wave_done_at > 0 AND o.accepted_wave < o.current_wave "
              "ORDER BY r.seq",
              soci::into(w.release_id), soci::into(w.wave), soci::into(w.done_at));
  st.execute();
  while (st.fetch()) out.push_back(w);
  return out;
}

}  // namespace

std::vector<DueMeasurement> DueMeasurements(soci::session& sql, UnixSeconds now,
                                            const release::PlanParseOptions& options) {
  std::vector<DueMeasurement> due;
  for (const MeasuredWave& w : WavesToMeasure(sql)) {
    auto release = LoadRelease(sql, w.release_id, options);
    if (!release || !release->plan.golive || release->plan.golive->checks.empty()) continue;
    std::optional<release::CheckSubject> subject;  // read only when a check is due
    for (release::WaveCheck& c :
         WaveChecks(sql, w.release_id, release->plan.golive->checks, w.wave, w.done_at)) {
      if (c.verdict.state != release::CheckVerdict::State::kMeasuring || c.next_at > now) continue;
      if (!subject) {
        subject.emplace();
        subject->release = w.release_id;
        subject->version = release->plan.version.ToString();
        for (const RolloutHost& h : LoadRolloutHosts(sql, w.release_id)) {
          if (h.wave == w.wave) subject->wave_hosts.push_back(h.host);
        }
      }
      due.push_back({w.release_id, w.wave, std::move(c.check), *subject});
    }
  }
  return due;
}

void RecordMeasurement(Transaction& tx, const DueMeasurement& due,
                       const release::Measurement& measurement) {
  soci::session& sql = tx.sql();
  const std::optional<RolloutRow> row = LoadRollout(sql, due.release_id);
  if (!row || row->current_wave != due.wave || row->wave_done_at == 0 ||
      row->accepted_wave >= row->current_wave || row->finished != 0) {
    return;  // the wave moved on, or a person decided, while it was measured
  }
  auto taken = WaveMeasurements(sql, due.release_id, due.wave, row->wave_done_at)[due.check.name];
  if (release::JudgeCheck(due.check, taken).state != release::CheckVerdict::State::kMeasuring) {
    return;  // settled already (two runners, or a retry of the same measurement)
  }
  std::string key = due.release_id, name = due.check.name,
              outcome(release::MeasureOutcomeName(measurement.outcome)),
              value = ValueText(measurement.value), detail = measurement.detail;
  long long wave = due.wave, at = measurement.at, seq = 0;
  // Counted over every round of the wave (a retried wave measures afresh).
  sql << "SELECT COUNT(*) FROM rollout_measurements WHERE release_id = :r AND wave = :w AND "
         "check_name = :c",
      soci::use(key), soci::use(wave), soci::use(name), soci::into(seq);
  sql << "INSERT INTO rollout_measurements (release_id, wave, check_name, seq, at, outcome, "
         "value, detail) VALUES (:r, :w, :c, :s, :a, :o, :v, :d)",
      soci::use(key), soci::use(wave), soci::use(name), soci::use(seq), soci::use(at),
      soci::use(outcome), soci::use(value), soci::use(detail);

  taken.push_back(measurement);
  const release::CheckVerdict verdict = release::JudgeCheck(due.check, taken);
  if (verdict.state == release::CheckVerdict::State::kMeasuring) return;
  AuditEvent event("rollout.check", "release", due.release_id);
  event.release_id = due.release_id;
  json values = json::array();
  for (const release::Measurement& m : taken) {
    values.push_back({{"outcome", release::MeasureOutcomeName(m.outcome)},
                      {"value", ValueJson(m.value)},
                      {"at", protocol::FormatRfc3339Utc(m.at)}});
  }
  event.detail = {{"check", due.check.name},
                  {"type", release::CheckKindName(due.check.kind)},
                  {"wave", due.wave + 1},
                  {"condition", due.check.condition.ToString()},
                  {"verdict", release::CheckVerdictStateName(verdict.state)},
                  {"summary", verdict.summary},
                  {"dry_run", due.check.dry_run},
                  {"measurements", std::move(values)}};
  tx.Audit(event);
}

std::map<std::string, std::vector<release::Measurement>> WaveMeasurements(
    soci::session& sql, const std::string& release_id, long long wave, UnixSeconds since) {
  std::map<std::string, std::vector<release::Measurement>> out;
  long long from = since;
  std::string name, outcome, value, detail;
  long long at = 0;
  soci::statement st =
      OneShot(sql,
              "SELECT check_name, at, outcome, value, detail FROM rollout_measurements "
              "WHERE release_id = :r AND wave = :w AND at >= :s ORDER BY check_name, seq",
              soci::use(release_id), soci::use(wave), soci::use(from), soci::into(name),
              soci::into(at), soci::into(outcome), soci::into(value), soci::into(detail));
  st.execute();
  while (st.fetch()) {
    release::Measurement m;
    m.at = at;
    m.outcome = release::MeasureOutcomeFromName(outcome).value_or(release::MeasureOutcome::kError);
    m.value = ValueOf(value);
    m.detail = detail;
    out[name].push_back(std::move(m));
  }
  return out;
}

std::vector<release::WaveCheck> WaveChecks(soci::session& sql, const std::string& release_id,
                                           const std::vector<release::MetricCheck>& checks,
                                           long long wave, UnixSeconds done_at) {
  std::vector<release::WaveCheck> out;
  if (checks.empty() || wave < 0 || done_at <= 0) return out;
  auto measured = WaveMeasurements(sql, release_id, wave, done_at);
  for (const release::MetricCheck& check : checks) {
    const std::vector<release::Measurement>& taken = measured[check.name];
    out.push_back({check, release::JudgeCheck(check, taken),
                   release::NextMeasurementAt(check, taken, done_at)});
  }
  return out;
}

json ReleaseMeasurements(soci::session& sql, const std::string& release_id) {
  json out = json::array();
  std::string name, outcome, value, detail;
  long long wave = 0, at = 0;
  soci::statement st =
      OneShot(sql,
              "SELECT check_name, wave, at, outcome, value, detail FROM "
              "rollout_measurements WHERE release_id = :r ORDER BY at, wave, check_name, "
              "seq",
              soci::use(release_id), soci::into(name), soci::into(wave), soci::into(at),
              soci::into(outcome), soci::into(value), soci::into(detail));
  st.execute();
  while (st.fetch()) {
    out.push_back({{"check", name},
                   {"wave", wave + 1},
                   {"at", protocol::FormatRfc3339Utc(at)},
                   {"outcome", outcome},
                   {"value", ValueJson(ValueOf(value))},
                   {"detail", detail}});
  }
  return out;
}

}  // namespace fabu::coordinator
