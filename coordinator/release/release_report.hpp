// The release report (发布报告) and the release test report (发布测试报告) of
// one release (procedure §8), from what fabu recorded:
// - release report: the timeline of every state change with actor and role,
//   the waves and the hosts with their results (RolloutStatus), incidents,
//   rollbacks, the CMDB update (upgrade records, deliveries and the
//   configuration baseline before the rollout and at close), the close
//   code, closing notes and review notes. HTML carries an inline SVG of
//   progress per wave (succeeded and failed hosts of each wave).
// - test report: every test report filed (result, tester, round, text) and
//   the acceptance, with an emergency waiver flagged.
// As Markdown, self-contained HTML or JSON; times in the given zone.
//
// Pure functions over values; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/release/kpi.hpp"
#include "coordinator/release/record_render.hpp"
#include "coordinator/release/report_export.hpp"
#include "coordinator/release/workflow.hpp"

namespace fabu::coordinator::release {

struct ReleaseReportFacts {
  Release release;
  // RolloutStatus (coordinator/deploy): {"rollout": ..., "waves": [...],
  // "hosts": [...]}; "rollout" null when the release never rolled out.
  nlohmann::json rollout = nlohmann::json::object();
  std::vector<IncidentRecord> incidents;
  nlohmann::json upgrade_records = nlohmann::json::array();  // UpgradeRecord::ToJson each
  nlohmann::json cmdb = nlohmann::json::object();            // CmdbConfirmation::ToJson
  // The configuration baseline (procedure §6.2.1(9), §6.2.8): rows of
  // {"phase": "before"|"after", "taken", "host", "app", "version"}; a host
  // without software has one row with app "".
  nlohmann::json baseline = nlohmann::json::array();
  // The release's notices (coordinator/notify): [{"subscription", "event",
  // "state", "attempts", "last_error"}], newest first.
  nlohmann::json notices = nlohmann::json::array();
  std::string review_notes;
};

// The baseline rows paired per host and app: its version before the rollout
// and at close (empty for a phase not taken or an app the host did not have
// then). A host with no software in either phase has one entry without an
// app. Sorted by host, then app. The release report and `fabu cmdb baseline`.
struct BaselinePair {
  std::string host, app, before, after;
};
std::vector<BaselinePair> PairBaseline(const nlohmann::json& baseline);
// The rows of phase "outside": at close, the hosts that matched the targets
// but were not in the rollout, with what they ran then (app "" for none).
// Sorted by host, then app.
struct BaselineOutside {
  std::string host, app, version;
};
std::vector<BaselineOutside> OutsideBaseline(const nlohmann::json& baseline);
// The hosts the baseline at close says are not on the release's version (a
// row with a "reason": failed, rolled back, joined late and not deployed,
// not in this release...), once each, with the version of `app` (the
// release's product) they ran then ("" for none). Sorted by host.
struct BaselineNotOnVersion {
  std::string host, version, reason;
};
std::vector<BaselineNotOnVersion> NotOnVersionBaseline(const nlohmann::json& baseline,
                                                       std::string_view app);

nlohmann::json ReleaseReportJson(const ReleaseReportFacts& facts, const TimeZone& zone);
// kInvalidArgument for csv (the report is not one table).
Result<std::string> RenderReleaseReport(const ReleaseReportFacts& facts, RecordFormat format,
                                        Lang lang, const TimeZone& zone);

nlohmann::json TestReportJson(const Release& release);
Result<std::string> RenderTestReport(const Release& release, RecordFormat format, Lang lang,
                                     const TimeZone& zone);

}  // namespace fabu::coordinator::release
