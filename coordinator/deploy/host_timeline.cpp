#include "coordinator/deploy/host_timeline.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include "coordinator/deploy/deployment_rows.hpp"
#include "coordinator/store/row_query.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

using nlohmann::json;

json ReportedEvent::ToJson() const {
  return {{"sequence", sequence},
          {"step", protocol::StepName(step)},
          {"failed_step", failed_step ? json(protocol::StepName(*failed_step)) : json(nullptr)},
          {"message", message},
          {"output", output},
          {"time", time > 0 ? json(protocol::FormatRfc3339Utc(time)) : json(nullptr)},
          {"received", received}};
}

std::vector<ReportedEvent> DeploymentEvents(soci::session& sql, const std::string& deployment_id) {
  std::vector<ReportedEvent> events;
  std::string step, failed_step, message, output, received;
  long long sequence = 0, time = 0;
  soci::statement st = OneShot(
      sql,
      "SELECT sequence, step, failed_step, message, output, time, received "
      "FROM deployment_events WHERE deployment = :d ORDER BY sequence",
      soci::use(deployment_id), soci::into(sequence), soci::into(step), soci::into(failed_step),
      soci::into(message), soci::into(output), soci::into(time), soci::into(received));
  st.execute();
  while (st.fetch()) {
    ReportedEvent e;
    e.sequence = static_cast<std::uint64_t>(sequence);
    // Stored from a parsed event: a name this coordinator does not know
    // cannot be there; read it as the first step rather than fail the view.
    e.step = protocol::ParseStep(step).value_or(protocol::Step::kAssigned);
    if (!failed_step.empty()) {
      if (auto parsed = protocol::ParseStep(failed_step)) e.failed_step = *parsed;
    }
    e.message = message;
    e.output = output;
    e.time = time;
    e.received = received;
    events.push_back(std::move(e));
  }
  return events;
}

std::map<std::string, std::string> FailureOutputs(soci::session& sql,
                                                  const std::string& release_id) {
  std::map<std::string, std::string> outputs;
  std::string deployment, output;
  // Only `failed` events: a success carries its health check's output too,
  // and a release of many hosts must not read them all. A deployment that
  // succeeded has none: its events are not even looked at (at 20,000 hosts
  // that scan was a third of a status request).
  soci::statement st = OneShot(sql,
                               "SELECT e.deployment, e.output FROM deployment_events e "
                               "JOIN deployments d ON d.id = e.deployment "
                               "WHERE d.release_id = :r AND d.result <> 'succeeded' "
                               "AND e.step = 'failed' AND e.output <> '' "
                               "ORDER BY e.deployment, e.sequence",
                               soci::use(release_id), soci::into(deployment), soci::into(output));
  st.execute();
  while (st.fetch()) outputs[deployment] = output;  // the latest wins
  return outputs;
}

std::map<std::string, std::string> FailureOutputs(soci::session& sql,
                                                  const std::vector<std::string>& ids) {
  std::map<std::string, std::string> outputs;
  if (ids.empty()) return outputs;
  std::string id, output;
  soci::statement st = OneShot(sql,
                               "SELECT output FROM deployment_events WHERE deployment = :d "
                               "AND step = 'failed' AND output <> '' "
                               "ORDER BY sequence DESC LIMIT 1",
                               soci::use(id), soci::into(output));
  for (const std::string& each : ids) {
    id = each;
    if (st.execute(true)) outputs[id] = output;
  }
  return outputs;
}

Result<json> HostTimeline(soci::session& sql, const std::string& release_id,
                          const std::string& host) {
  auto deployments = ListHostDeployments(sql, release_id, host);
  if (deployments.empty()) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("host {} has no deployment of release {}", host, release_id));
  }
  json out = json::array();
  for (const DeploymentRecord& d : deployments) {
    json entry = d.ToJson();
    json events = json::array();
    for (const ReportedEvent& e : DeploymentEvents(sql, d.id)) events.push_back(e.ToJson());
    entry["events"] = std::move(events);
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace fabu::coordinator
