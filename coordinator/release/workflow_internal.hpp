// What the workflow's operations share (workflow_review.cpp,
// workflow_rollout.cpp): the checks every operation makes and how it
// records itself. Internal to coordinator/release/.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/release/workflow.hpp"

namespace fabu::coordinator::release::detail {

using nlohmann::json;
using S = ReleaseState;

inline constexpr std::string_view kEmergencyCategory = "emergency";

inline const std::vector<ReleaseState> kBeforeDeploying = {
    S::kDraft, S::kInReview, S::kApproved, S::kTesting, S::kAccepted, S::kScheduled};

template <typename T>
bool Contains(const std::vector<T>& items, const T& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

// "approver", "release_manager or admin", "a, b or c".
inline std::string RoleList(const std::vector<Role>& roles) {
  std::string out;
  for (std::size_t i = 0; i < roles.size(); ++i) {
    if (i > 0) out += (i + 1 == roles.size()) ? " or " : ", ";
    out += RoleName(roles[i]);
  }
  return out;
}

inline std::string StateList(const std::vector<ReleaseState>& states) {
  std::string out;
  for (std::size_t i = 0; i < states.size(); ++i) {
    if (i > 0) out += (i + 1 == states.size()) ? " or " : ", ";
    out += ReleaseStateName(states[i]);
  }
  return out;
}

// What must happen next, said from the state a release is in.
inline std::string_view NextStepHint(ReleaseState state) {
  switch (state) {
    case S::kDraft:
      return "submit it first";
    case S::kInReview:
      return "it is in review: every listed reviewer must approve it first";
    case S::kApproved:
      return "a tester must file a test report first";
    case S::kTesting:
      return "an approver must accept it first";
    case S::kAccepted:
      return "it must be scheduled first";
    case S::kScheduled:
      return "it is already scheduled";
    case S::kDeploying:
      return "it is deploying";
    case S::kPaused:
      return "its rollout is paused";
    case S::kDeployed:
      return "it is deployed";
    case S::kFailed:
      return "its rollout failed";
    case S::kRollingBack:
      return "it is rolling back";
    case S::kRolledBack:
      return "it was rolled back";
    case S::kClosed:
      return "it is closed";
    case S::kCancelled:
      return "it was cancelled";
  }
  return "";
}

inline std::size_t StateOrder(ReleaseState state) {
  const auto& all = AllReleaseStates();
  return static_cast<std::size_t>(std::find(all.begin(), all.end(), state) - all.begin());
}

inline Result<void> CheckRole(Action action, const Actor& actor) {
  const TransitionRule& rule = RuleFor(action);
  if (Contains(rule.roles, actor.role)) return {};
  return Fail(ErrorCode::kPermissionDenied,
              fmt::format("{} needs role {} (you are {})", ActionName(action), RoleList(rule.roles),
                          RoleName(actor.role)));
}

inline Result<void> CheckState(Action action, const Release& release) {
  const TransitionRule& rule = RuleFor(action);
  if (Contains(rule.from, release.state)) return {};
  std::string hint;
  const bool main_line = StateOrder(release.state) <= StateOrder(S::kScheduled);
  std::size_t latest_from = 0;
  for (ReleaseState from : rule.from) latest_from = std::max(latest_from, StateOrder(from));
  if (main_line && StateOrder(release.state) > latest_from) {
    hint = "that step is already behind it";
  } else {
    hint = std::string(NextStepHint(release.state));
  }
  return Fail(ErrorCode::kConflict,
              fmt::format("cannot {} release {} in state {}: {} ({} applies in {})",
                          ActionName(action), release.id, ReleaseStateName(release.state), hint,
                          ActionName(action), StateList(rule.from)));
}

// Role, then state: the two checks every operation starts with.
inline Result<void> CheckAllowed(Action action, const Release& release, const Actor& actor) {
  if (auto role = CheckRole(action, actor); !role) return role;
  return CheckState(action, release);
}

inline Result<void> CheckOwnerOrAdmin(Action action, const Release& release, const Actor& actor) {
  if (actor.name == release.owner || actor.role == Role::kAdmin) return {};
  return Fail(ErrorCode::kPermissionDenied,
              fmt::format("only the owner of release {} ({}) or an admin can {} it", release.id,
                          release.owner, ActionName(action)));
}

inline Result<void> CheckNotOwner(Action action, const Release& release, const Actor& actor) {
  if (actor.name != release.owner) return {};
  return Fail(ErrorCode::kPermissionDenied,
              fmt::format("the owner of a release cannot {} it (§6.1.2)", ActionName(action)));
}

inline Result<void> CheckListedReviewer(Action action, const Release& release, const Actor& actor) {
  if (Contains(release.plan.reviewers, actor.name)) return {};
  std::string names;
  for (const auto& name : release.plan.reviewers) names += (names.empty() ? "" : ", ") + name;
  return Fail(ErrorCode::kPermissionDenied,
              fmt::format("{} is not a listed reviewer of release {} and cannot {} it "
                          "(reviewers: {})",
                          actor.name, release.id, ActionName(action), names));
}

// Verbs that end or reverse something (cancel, pause, abort, rollback,
// override-freeze, a waived test) say why; the reason is the history note,
// so the audit trail and the release report show it (docs/api.md).
inline Result<void> NeedReason(Action action, std::string_view reason) {
  if (!IsBlank(reason)) return {};
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("{} needs a reason: say why (\"reason\" in the API, --reason in fabu)",
                          ActionName(action)));
}

// Moves the release to `to`, and writes the move (who, when, from where,
// why) into its history.
inline void MoveTo(Release& release, Action action, const Actor& actor, Instant at, ReleaseState to,
                   std::string note = {}) {
  release.history.push_back(HistoryEntry{action, actor.name, actor.role, at, release.state, to,
                                         std::move(note), at.unix_ms});
  release.state = to;
  release.updated_at = at;
}

// Everything a review decided is void once the content changes (§1.1).
inline void ClearApprovals(Release& release) {
  release.approvals.clear();
  release.acceptance.reset();
  release.frozen_content_digest.clear();
  release.golive_approved = false;
  release.approved_golive_digest.clear();
  release.golive_approval.reset();
}

inline const TestReport* LatestReportOfRound(const Release& release) {
  for (auto it = release.test_reports.rbegin(); it != release.test_reports.rend(); ++it) {
    if (it->round == release.review_round) return &*it;
  }
  return nullptr;
}

}  // namespace fabu::coordinator::release::detail
