// The `deployments` table's rows as SOCI reads them: shared by the files of
// coordinator/deploy/ (deployments.cpp, deployment_events.cpp,
// deployment_sweep.cpp) and by the modules above it that read deployments
// rows themselves (cmdb/upgrade_records.cpp), so a column is read one way.
#pragma once

#include <soci/soci.h>

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "coordinator/deploy/deployments.hpp"
#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator::detail {

inline constexpr const char* kColumns =
    "id, release_id, host, attempt, environment, kind, app, version, package_id, package_size, "
    "package_url, host_timeout, step, final, result, message, last_sequence, created, started, "
    "finished, deadline, wave, from_version, observe, observe_interval";

// SOCI binds plain types; this is one deployments row.
struct Row {
  std::string id, release_id, host, environment, kind, app, version, package_id, package_url, step,
      result, message, from_version;
  long long attempt = 0, package_size = 0, host_timeout = 0, final = 0, last_sequence = 0,
            created = 0, started = 0, finished = 0, deadline = 0, wave = -1, observe = 0,
            observe_interval = 0;

  void Into(soci::statement& st) {
    st.exchange(soci::into(id));
    st.exchange(soci::into(release_id));
    st.exchange(soci::into(host));
    st.exchange(soci::into(attempt));
    st.exchange(soci::into(environment));
    st.exchange(soci::into(kind));
    st.exchange(soci::into(app));
    st.exchange(soci::into(version));
    st.exchange(soci::into(package_id));
    st.exchange(soci::into(package_size));
    st.exchange(soci::into(package_url));
    st.exchange(soci::into(host_timeout));
    st.exchange(soci::into(step));
    st.exchange(soci::into(final));
    st.exchange(soci::into(result));
    st.exchange(soci::into(message));
    st.exchange(soci::into(last_sequence));
    st.exchange(soci::into(created));
    st.exchange(soci::into(started));
    st.exchange(soci::into(finished));
    st.exchange(soci::into(deadline));
    st.exchange(soci::into(wave));
    st.exchange(soci::into(from_version));
    st.exchange(soci::into(observe));
    st.exchange(soci::into(observe_interval));
  }

  DeploymentRecord ToRecord() const {
    DeploymentRecord d;
    d.id = id;
    d.release_id = release_id;
    d.host = host;
    d.attempt = attempt;
    d.environment = environment;
    d.kind = protocol::ParseDeploymentKind(kind).value_or(protocol::DeploymentKind::kInstall);
    d.app = app;
    d.version = version;
    d.package_id = package_id;
    d.package_size = static_cast<std::uint64_t>(package_size);
    d.package_url = package_url;
    d.host_timeout_seconds = host_timeout;
    // A value this coordinator did not write reads as the first step and, if
    // final, as failed: nothing counts as a success it cannot name.
    d.step = protocol::ParseStep(step).value_or(protocol::Step::kAssigned);
    if (final != 0) d.result = ParseDeploymentResult(result).value_or(DeploymentResult::kFailed);
    d.message = message;
    d.last_sequence = static_cast<std::uint64_t>(last_sequence);
    d.created = created;
    d.started = started;
    d.finished = finished;
    d.deadline = deadline;
    d.wave = wave;
    d.from_version = from_version;
    d.observe_seconds = observe;
    d.observe_interval_seconds = observe_interval;
    return d;
  }
};

// Runs `sql_text` (selecting kColumns) with `bind` adding the uses.
template <typename Bind>
std::vector<DeploymentRecord> Query(soci::session& sql, const std::string& sql_text, Bind bind) {
  return QueryRows<Row>(sql, sql_text, bind, [](const Row& row) { return row.ToRecord(); });
}

// The deployment `id`, if there is one (a statement prepared once).
std::optional<DeploymentRecord> FindDeployment(Transaction& tx, const std::string& id);
// Those of `ids` there are, by id, read with one statement (prepared once).
std::map<std::string, DeploymentRecord> FindDeployments(Transaction& tx,
                                                        std::span<const std::string> ids);

}  // namespace fabu::coordinator::detail
