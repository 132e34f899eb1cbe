#include "coordinator/metrics/metrics.hpp"

#include <fmt/format.h>
#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>
#include <soci/soci.h>

#include <sstream>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/deploy/rollout_rows.hpp"
#include "coordinator/store/release_records.hpp"
#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator {

namespace {

// Request latency buckets, in seconds: a long poll's answer may take its
// whole wait (up to kMaxPollWaitSeconds), a store read a millisecond.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return kBuckets;
}

// Group commit time: a commit of one write on SQLite in WAL mode takes well
// under a millisecond; a slow disk or a group of 512 far longer.
const prometheus::Histogram::BucketBoundaries& CommitBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  return kBuckets;
}

// Writes per group commit, up to Store::kMaxGroup (512).
const prometheus::Histogram::BucketBoundaries& GroupBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {1,  2,  4,   8,   16,
                                                                   32, 64, 128, 256, 512};
  return kBuckets;
}

// The rows of `table` (a fixed name, never input) by their `state` column.
std::map<std::string, std::int64_t> CountByState(soci::session& sql, std::string_view table) {
  std::map<std::string, std::int64_t> out;
  std::string state;
  long long count = 0;
  soci::statement st =
      OneShot(sql, fmt::format("SELECT state, COUNT(*) FROM {} GROUP BY state", table),
              soci::into(state), soci::into(count));
  st.execute(false);
  while (st.fetch()) out[state] = count;
  return out;
}

}  // namespace

Result<StoreFigures> ReadStoreFigures(soci::session& sql, protocol::UnixSeconds now,
                                      const release::PlanParseOptions& plan) {
  StoreFigures f;
  f.releases_by_state = CountByState(sql, "releases");
  {
    StoreFigures::DeploymentCount row;
    long long count = 0;
    int final = 0;
    soci::statement st =
        OneShot(sql,
                "SELECT environment, kind, step, final, result, COUNT(*) FROM deployments "
                "GROUP BY environment, kind, step, final, result",
                soci::into(row.environment), soci::into(row.kind), soci::into(row.step),
                soci::into(final), soci::into(row.result), soci::into(count));
    st.execute(false);
    while (st.fetch()) {
      StoreFigures::DeploymentCount d = row;
      if (final == 0) d.result.clear();
      d.count = count;
      f.deployments.push_back(std::move(d));
    }
  }
  {
    std::vector<std::string> running;
    std::string id;
    soci::statement st =
        OneShot(sql, "SELECT id FROM releases WHERE state IN ('deploying', 'paused') ORDER BY seq",
                soci::into(id));
    st.execute(false);
    while (st.fetch()) running.push_back(id);
    for (const std::string& release : running) {
      if (auto loaded = LoadRelease(sql, release, plan)) {
        if (const auto window = loaded->ActiveWindow()) f.window_end[release] = window->end.seconds;
      }
      auto rollout = LoadRollout(sql, release);
      if (!rollout) continue;
      const auto hosts = LoadRolloutHosts(sql, release);
      const HostDeploymentStates states = LoadHostDeploymentStates(sql, release);
      for (std::size_t w = 0; w < rollout->wave_count(); ++w) {
        const auto tally = CountWave(hosts, states, static_cast<long long>(w));
        f.waves.push_back(
            {release, static_cast<std::int64_t>(w) + 1, static_cast<std::int64_t>(tally.hosts),
             static_cast<std::int64_t>(tally.succeeded), static_cast<std::int64_t>(tally.failed),
             static_cast<std::int64_t>(tally.assigned - tally.final)});
      }
    }
  }
  {
    f.outbox_by_state = CountByState(sql, "cmdb_outbox");
    // Every state, at 0 when none is in it: a dashboard shows a flat line,
    // not "no data", and an alert on a state has a series to watch.
    for (const std::string_view state :
         {kOutboxPending, kOutboxFailing, kOutboxDelivered, kOutboxWaived, kOutboxGivenUp}) {
      f.outbox_by_state.try_emplace(std::string(state), 0);
    }
    std::string oldest;
    soci::indicator ind = soci::i_null;
    std::string pending(kOutboxPending), failing(kOutboxFailing);
    sql << "SELECT MIN(created) FROM cmdb_outbox WHERE state IN (:p, :f)", soci::use(pending),
        soci::use(failing), soci::into(oldest, ind);
    if (ind == soci::i_ok && !oldest.empty()) {
      if (auto created = protocol::ParseRfc3339(oldest)) {
        f.outbox_oldest_undelivered_seconds =
            static_cast<double>(std::max<std::int64_t>(0, now - created->seconds));
      }
    }
  }
  {
    long long enrolled = 0, recent = 0;
    const long long since = now - kSeenRecentlySeconds;
    sql << "SELECT COUNT(*), COALESCE(SUM(CASE WHEN last_seen >= :s THEN 1 ELSE 0 END), 0) "
           "FROM hosts WHERE removed = 0",
        soci::use(since), soci::into(enrolled), soci::into(recent);
    f.hosts_enrolled = enrolled;
    f.hosts_seen_recently = recent;
  }
  return f;
}

CoordinatorMetrics::CoordinatorMetrics(const std::string& version, const std::string& commit)
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("fabu_http_requests_total")
                    .Help("HTTP requests answered, by route pattern, method and status")
                    .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("fabu_http_request_duration_seconds")
                   .Help("Time from a request's first byte to its answer's last, by route "
                         "pattern (a long poll's includes its wait)")
                   .Register(*registry_)),
      commit_seconds_(prometheus::BuildHistogram()
                          .Name("fabu_store_commit_duration_seconds")
                          .Help("Time of each group commit of the store, BEGIN to COMMIT, the "
                                "writes' own work included")
                          .Register(*registry_)
                          .Add({}, CommitBuckets())),
      commit_writes_(prometheus::BuildHistogram()
                         .Name("fabu_store_commit_writes")
                         .Help("Writes (API requests, agents' reports, the sweep...) in each "
                               "group commit of the store")
                         .Register(*registry_)
                         .Add({}, GroupBuckets())),
      enrollments_(prometheus::BuildCounter()
                       .Name("fabu_enrollments_total")
                       .Help("Enrollment requests answered, by result (enrolled, refused)")
                       .Register(*registry_)),
      enrolled_(enrollments_.Add({{"result", "enrolled"}})),
      enroll_refused_(enrollments_.Add({{"result", "refused"}})),
      audit_intact_(prometheus::BuildGauge()
                        .Name("fabu_audit_chain_intact")
                        .Help("1 when the daemon's last check found the audit chain whole, 0 "
                              "when broken (absent before the first check)")
                        .Register(*registry_)),
      audit_verified_(prometheus::BuildGauge()
                          .Name("fabu_audit_chain_verified_seq")
                          .Help("The last audit entry the daemon's checks found whole")
                          .Register(*registry_)),
      audit_checked_(prometheus::BuildGauge()
                         .Name("fabu_audit_chain_last_check_timestamp_seconds")
                         .Help("When the daemon last checked the audit chain (Unix time)")
                         .Register(*registry_)) {
  prometheus::BuildGauge()
      .Name("fabu_build_info")
      .Help("The coordinator's version and commit (always 1)")
      .Register(*registry_)
      .Add({{"version", version}, {"commit", commit}})
      .Set(1);
}

void CoordinatorMetrics::ObserveRequest(std::string_view route, std::string_view method, int status,
                                        double seconds) {
  const std::string pattern = route.empty() ? std::string("unmatched") : std::string(route);
  requests_
      .Add(
          {{"route", pattern}, {"method", std::string(method)}, {"status", std::to_string(status)}})
      .Increment();
  latency_.Add({{"route", pattern}}, LatencyBuckets()).Observe(seconds);
}

void CoordinatorMetrics::ObserveCommit(double seconds, std::size_t writes) {
  commit_seconds_.Observe(seconds);
  commit_writes_.Observe(static_cast<double>(writes));
}

void CoordinatorMetrics::CountEnrollment(bool enrolled) {
  (enrolled ? enrolled_ : enroll_refused_).Increment();
}

void CoordinatorMetrics::SetAuditCheck(bool intact, std::int64_t verified_seq, double at) {
  audit_intact_.Add({}).Set(intact ? 1 : 0);
  audit_verified_.Add({}).Set(static_cast<double>(verified_seq));
  audit_checked_.Add({}).Set(at);
}

std::string CoordinatorMetrics::Expose(const StoreFigures& store, std::size_t long_polls,
                                       std::size_t held_requests, const ServerLoad* load) const {
  // The figures of this moment, in a registry of their own made anew.
  prometheus::Registry now;
  auto gauge = [&now](const std::string& name, const std::string& help) -> auto& {
    return prometheus::BuildGauge().Name(name).Help(help).Register(now);
  };
  gauge("fabu_agent_long_polls", "Agents' long polls held open now")
      .Add({})
      .Set(static_cast<double>(long_polls));
  gauge("fabu_agent_held_requests", "Agents' requests held while a wave is assigned in parts")
      .Add({})
      .Set(static_cast<double>(held_requests));
  gauge("fabu_hosts_enrolled", "Hosts enrolled and not removed")
      .Add({})
      .Set(static_cast<double>(store.hosts_enrolled));
  gauge("fabu_hosts_seen_recently", "Enrolled hosts whose agent was heard in the last 5 minutes")
      .Add({})
      .Set(static_cast<double>(store.hosts_seen_recently));
  auto& releases = gauge("fabu_releases", "Releases by state");
  for (const auto& [state, count] : store.releases_by_state) {
    releases.Add({{"state", state}}).Set(static_cast<double>(count));
  }
  auto& deployments = gauge("fabu_deployments",
                            "Deployments by environment, kind, step and result (\"\" while "
                            "unfinished)");
  for (const auto& d : store.deployments) {
    deployments
        .Add({{"environment", d.environment},
              {"kind", d.kind},
              {"step", d.step},
              {"result", d.result}})
        .Set(static_cast<double>(d.count));
  }
  auto& wave_hosts = gauge("fabu_rollout_wave_hosts",
                           "Hosts of each wave of a running rollout, by progress (total: the "
                           "wave's size)");
  for (const auto& w : store.waves) {
    const std::string wave = std::to_string(w.wave);
    wave_hosts.Add({{"release", w.release}, {"wave", wave}, {"progress", "total"}})
        .Set(static_cast<double>(w.hosts));
    wave_hosts.Add({{"release", w.release}, {"wave", wave}, {"progress", "succeeded"}})
        .Set(static_cast<double>(w.succeeded));
    wave_hosts.Add({{"release", w.release}, {"wave", wave}, {"progress", "failed"}})
        .Set(static_cast<double>(w.failed));
    wave_hosts.Add({{"release", w.release}, {"wave", wave}, {"progress", "in_progress"}})
        .Set(static_cast<double>(w.in_progress));
  }
  auto& window_end = gauge("fabu_release_window_end_timestamp_seconds",
                           "End of the go-live window of each release deploying or paused (Unix "
                           "time): a rollout still running past it is stuck or late");
  for (const auto& [release, end] : store.window_end) {
    window_end.Add({{"release", release}}).Set(static_cast<double>(end));
  }
  auto& outbox = gauge("fabu_outbox_messages",
                       "CMDB deliveries and release notices by state (pending, failing, "
                       "delivered, waived, given_up)");
  for (const auto& [state, count] : store.outbox_by_state) {
    outbox.Add({{"state", state}}).Set(static_cast<double>(count));
  }
  gauge("fabu_outbox_oldest_undelivered_age_seconds",
        "Age of the oldest pending or failing outbox message (0 when none waits)")
      .Add({})
      .Set(store.outbox_oldest_undelivered_seconds);

  if (load != nullptr) {
    auto figure = [](const std::atomic<std::uint64_t>& value) {
      return static_cast<double>(value.load(std::memory_order_relaxed));
    };
    gauge("fabu_connections_open", "TCP connections open now")
        .Add({})
        .Set(figure(load->connections));
    gauge("fabu_package_downloads_in_flight", "Package downloads being written now")
        .Add({})
        .Set(figure(load->downloads));
    gauge("fabu_package_downloads_queued", "Package downloads waiting for a slot (max_downloads)")
        .Add({})
        .Set(figure(load->queued_downloads));
    prometheus::BuildCounter()
        .Name("fabu_package_bytes_sent_total")
        .Help("Bytes of packages written to agents since the coordinator started")
        .Register(now)
        .Add({})
        .Increment(figure(load->package_bytes));
  }
  auto families = registry_->Collect();
  for (auto& family : now.Collect()) families.push_back(std::move(family));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace fabu::coordinator
