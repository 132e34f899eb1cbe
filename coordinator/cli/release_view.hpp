// How `fabu release show R` reads to a person: the release's header, the nine
// parts of its plan (procedure §6.2.1), the review, the test deployment with
// its report and acceptance (§6.2.3), the go-live plan and its approval
// (§6.2.4), the rollout, the closure and the history. `--json` prints the
// API's answer instead.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace fabu::cli {

// `release` is GET /api/v1/releases/R; `hosts` is GET /api/v1/releases/R/hosts
// (its "hosts" member: every deployment of the release), used to count the
// test and production hosts by result.
std::string ReleaseText(const nlohmann::json& release, const nlohmann::json& hosts);

// `fabu cmdb baseline R`: each host and app of the release's targets with its
// version before the rollout and at close (GET .../upgrade-records
// "baseline"), "-" for a phase not taken yet or an app the host did not have.
std::string BaselineText(const nlohmann::json& baseline);

}  // namespace fabu::cli
