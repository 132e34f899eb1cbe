// Plan documents and people shared by the release tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "coordinator/release/release_plan.hpp"
#include "coordinator/release/workflow.hpp"

namespace fabu::coordinator::release::testing {

inline const std::string kPackageId(64, 'a');

// A complete plan, as docs/coordinator.md writes it, with a go-live plan.
inline std::string FullPlanJson(std::string_view category = "minor") {
  return std::string(R"({"title": "C3M-VIDEO playback download", "product": "c3m-video",
 "version": "V1.3.0.12", "category": ")") +
         std::string(category) + R"(", "change_refs": ["CHG-2026-0113"],
 "plan": {"purpose": "p", "scope": "s", "participants": "pa", "communication": "c",
          "work_plan": "w", "follow_up": "f", "rollback_plan": "r",
          "known_issues": "k", "baseline": "b"},
 "packages": [")" +
         kPackageId + R"("],
 "targets": {"selector": "app=c3m-video,env=production"},
 "reviewers": ["wang.approver", "li.ops-head"],
 "golive": {"window": {"start": "2026-12-01T01:00:00+08:00", "end": "2026-12-01T05:00:00+08:00"},
            "waves": ["1", "25%", "100%"], "max_failures": "10%",
            "between_waves": "5m", "host_timeout": "15m", "auto_rollback": true}})";
}

inline ReleasePlan FullPlan(std::string_view category = "minor") {
  auto plan = ParseReleasePlan(FullPlanJson(category));
  EXPECT_TRUE(plan.has_value()) << (plan ? "" : plan.error().message());
  return plan.value_or(ReleasePlan{});
}

// The parse error message, or "parsed".
inline std::string PlanError(std::string_view text, const PlanParseOptions& options = {}) {
  auto plan = ParseReleasePlan(text, options);
  return plan ? std::string("parsed") : plan.error().message();
}

inline const Actor kOwner{"zhang.rm", Role::kReleaseManager};
inline const Actor kWang{"wang.approver", Role::kApprover};
inline const Actor kLi{"li.ops-head", Role::kApprover};
inline const Actor kTester{"chen.tester", Role::kTester};
inline const Actor kAdmin{"root", Role::kAdmin};
inline const Actor kViewer{"zhao.viewer", Role::kViewer};

// A test deployment that succeeded on its one test host (procedure §6.2.3).
inline const TestRun kTestRunSucceeded{{"D-1"}, {}};

// `r` deployed to its one test host at `at` by its owner.
inline Release TestDeployed(const Release& r, UnixSeconds at) {
  auto deployed = StartTestDeployment(r, kOwner, at, 1);
  EXPECT_TRUE(deployed.has_value()) << (deployed ? "" : deployed.error().message());
  return deployed.value_or(r);
}

// 2026-11-20T00:00:00Z, before the go-live window.
inline constexpr UnixSeconds kT0 = 1795132800;

}  // namespace fabu::coordinator::release::testing
