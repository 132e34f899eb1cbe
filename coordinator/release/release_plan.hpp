// The release plan (发布方案, procedure §6.2.1): what a release manager writes and
// reviewers approve.
//
// Document form, JSON or YAML (see structured_input.hpp):
//   {"title": "...", "product": "c3m-video", "version": "V1.3.0.12",
//    "category": "minor", "change_refs": ["CHG-2026-0113"],
//    "plan": {"purpose": "...", "scope": "...", "participants": "...",
//             "communication": "...", "work_plan": "...", "follow_up": "...",
//             "rollback_plan": "...", "known_issues": "...", "baseline": "..."},
//    "packages": ["<64-hex package id>"], "targets": {"selector": "app=c3m-video"},
//    "reviewers": ["wang.approver"], "golive": {...go-live plan...}}
//
// Parsing is strict: unknown fields, wrong types, malformed versions, package
// ids, selectors and categories are kInvalidArgument errors naming the field
// path. title, product, version and category are required; everything else
// may be missing in a draft. `CheckSubmittable` lists what a draft still
// lacks before it may be submitted for review.
//
// The canonical JSON of a plan has every field, keys sorted; its SHA-256 is
// the content digest that approval freezes (procedure §1.1). The go-live plan has
// its own digest, because it may be set and approved later (procedure §6.2.5).
//
// Pure value types and functions; thread-safe.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coordinator/release/golive_plan.hpp"
#include "coordinator/release/structured_input.hpp"
#include "protocol/error.hpp"
#include "protocol/version.hpp"

namespace fabu::coordinator::release {

// True when `text` holds nothing but spaces, tabs and line breaks: a reason,
// note or plan part that says nothing. Every required text is checked by it.
bool IsBlank(std::string_view text);

// The nine parts of a release plan, in the order of procedure §6.2.1.
enum class PlanSection {
  kPurpose,        // 1. 发布的目的和背景
  kScope,          // 2. 发布影响范围
  kParticipants,   // 3. 参与部门及人员
  kCommunication,  // 4. 交流、准备、备案和培训
  kWorkPlan,       // 5. 测试、培训、客服支持、现场部署等工作计划
  kFollowUp,       // 6. 部署完成的后续工作计划
  kRollbackPlan,   // 7. 发布失败情况下的退回方案
  kKnownIssues,    // 8. 可预见问题以及相应的解决方法
  kBaseline,       // 9. 与软、硬件有关的配置基线
};
inline constexpr std::size_t kPlanSectionCount = 9;

struct PlanSectionInfo {
  PlanSection section;
  std::string_view key;       // JSON member of "plan"
  std::string_view title_zh;  // as the seed names it
  std::string_view title_en;
};

// The nine sections in order, with their names.
const std::array<PlanSectionInfo, kPlanSectionCount>& PlanSections();

// Target hosts chosen by labels: "k=v,k2=v2" (every label must match).
// Keys: [a-z0-9][a-z0-9._/-]*; values: [A-Za-z0-9._-]+; no spaces, no
// duplicate keys.
struct TargetSelector {
  std::vector<std::pair<std::string, std::string>> labels;  // in written order

  static Result<TargetSelector> Parse(std::string_view text);
  std::string ToString() const;  // "k=v,k2=v2"
  friend bool operator==(const TargetSelector&, const TargetSelector&) = default;
};

inline const std::vector<std::string>& DefaultCategories() {
  static const std::vector<std::string> kDefault = {"major", "minor", "patch", "emergency"};
  return kDefault;
}

struct PlanParseOptions {
  // Release categories allowed (procedure §6.1.1(8)); from the coordinator's config.
  std::vector<std::string> categories = DefaultCategories();
  DocumentFormat format = DocumentFormat::kAuto;
};

struct ReleasePlan {
  std::string title;
  std::string product;
  protocol::Version version;
  std::string category;
  std::vector<std::string> change_refs;
  std::array<std::string, kPlanSectionCount> sections;  // indexed by PlanSection
  std::vector<std::string> packages;                    // package ids: SHA-256, lower-case hex
  std::optional<TargetSelector> targets;
  // targets.late_joiners: a host that comes to match the targets while the
  // release is deploying (enrolled, or labelled, after `release start` fixed
  // them) joins the rollout's next wave not started yet, or a catch-up wave
  // after the last (docs/plan.md). Kept in the content (and its digest) only
  // when true, so plans written before it keep their digest.
  bool late_joiners = false;
  std::vector<std::string> reviewers;
  std::optional<GoLivePlan> golive;

  const std::string& Section(PlanSection section) const {
    return sections[static_cast<std::size_t>(section)];
  }
  std::string& Section(PlanSection section) { return sections[static_cast<std::size_t>(section)]; }

  friend bool operator==(const ReleasePlan&, const ReleasePlan&) = default;
};

// Parses a plan document (JSON or YAML text).
Result<ReleasePlan> ParseReleasePlan(std::string_view text, const PlanParseOptions& options = {});
// Validates an already parsed JSON document.
Result<ReleasePlan> ReleasePlanFromJson(const nlohmann::json& value,
                                        const PlanParseOptions& options = {});

// Succeeds when the plan is complete enough to submit for review; otherwise a
// kFailedPrecondition error listing every missing thing:
//   "not ready to submit: missing plan.purpose (发布的目的和背景 / purpose and
//    background), ...; packages: at least one package is needed; ..."
Result<void> CheckSubmittable(const ReleasePlan& plan);

// The canonical JSON of the whole plan, golive included when set.
nlohmann::json ReleasePlanToJson(const ReleasePlan& plan);
// The canonical JSON of what approval freezes: everything but golive.
nlohmann::json ReleaseContentToJson(const ReleasePlan& plan);

// SHA-256 hex of CanonicalJsonText(ReleaseContentToJson(plan)).
Result<std::string> ContentDigest(const ReleasePlan& plan);

}  // namespace fabu::coordinator::release
