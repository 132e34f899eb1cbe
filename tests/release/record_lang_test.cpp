// The records in both languages: the one table of terms (record_render.hpp)
// and the release report, test report and period report rendered with it —
// states, categories, close codes and results in the procedure's words
// with zh-CN, in English words otherwise.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "coordinator/release/record_render.hpp"
#include "coordinator/release/release_report.hpp"
#include "coordinator/release/report_export.hpp"
#include "tests/release/test_plans.hpp"

namespace fabu::coordinator::release {
namespace {

using nlohmann::json;
using testing::FullPlan;
using testing::kLi;
using testing::kOwner;
using testing::kT0;
using testing::kTester;
using testing::kWang;

bool Has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

struct TermCase {
  TermKind kind;
  std::string_view value;
  std::string_view en;
  std::string_view zh;
};

class TermTest : public ::testing::TestWithParam<TermCase> {};

TEST_P(TermTest, EachValueHasItsEnglishAndItsProceduresWord) {
  const TermCase& c = GetParam();
  EXPECT_EQ(Term(Lang::kEn, c.kind, c.value), c.en);
  EXPECT_EQ(Term(Lang::kZhCn, c.kind, c.value), c.zh);
}

INSTANTIATE_TEST_SUITE_P(
    Terms, TermTest,
    ::testing::Values(
        TermCase{TermKind::kState, "rolled_back", "Rolled back", "已回退"},
        TermCase{TermKind::kState, "closed", "Closed", "已关闭"},
        TermCase{TermKind::kState, "in_review", "In review", "评审中"},
        TermCase{TermKind::kState, "cancelled", "Cancelled", "已取消"},
        TermCase{TermKind::kCategory, "emergency", "Emergency", "紧急发布"},
        TermCase{TermKind::kCategory, "minor", "Minor", "一般发布"},
        TermCase{TermKind::kCloseCode, "success", "Success", "成功"},
        TermCase{TermKind::kCloseCode, "partial", "Partial", "部分成功"},
        TermCase{TermKind::kCloseCode, "rolled_back", "Rolled back", "已回退"},
        TermCase{TermKind::kResult, "rolled_back", "Rolled back", "已回退"},
        TermCase{TermKind::kResult, "rollback_failed", "Rollback failed", "回退失败"},
        TermCase{TermKind::kResult, "succeeded", "Succeeded", "成功"},
        TermCase{TermKind::kTestResult, "passed", "Passed", "通过"},
        TermCase{TermKind::kRecordKind, "rollback", "Rollback", "回退"},
        TermCase{TermKind::kDelivery, "given_up", "Given up", "已放弃"},
        TermCase{TermKind::kEvent, "scheduled", "Scheduled", "已排期"},
        TermCase{TermKind::kAction, "approve-golive", "approve-golive", "批准上线方案"},
        TermCase{TermKind::kRole, "release_manager", "release_manager", "发布负责人"}),
    [](const ::testing::TestParamInfo<TermCase>& param) {
      std::string name = fmt::format("{}_{}", TermKindName(param.param.kind), param.param.value);
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name;
    });

// Every state, close code and role the workflow knows has a term in both
// languages: a new one cannot be added without its words.
TEST(TermTableTest, EveryStateCloseCodeActionAndRoleHasATerm) {
  for (ReleaseState state : AllReleaseStates()) {
    const std::string_view name = ReleaseStateName(state);
    EXPECT_NE(Term(Lang::kZhCn, TermKind::kState, name), name) << name;
    EXPECT_NE(Term(Lang::kEn, TermKind::kState, name), name) << name;
  }
  for (CloseCode code : {CloseCode::kSuccess, CloseCode::kPartial, CloseCode::kFailed,
                         CloseCode::kRolledBack, CloseCode::kCancelled}) {
    EXPECT_NE(Term(Lang::kZhCn, TermKind::kCloseCode, CloseCodeName(code)), CloseCodeName(code));
  }
  for (const TransitionRule& rule : TransitionTable()) {
    const std::string_view name = ActionName(rule.action);
    EXPECT_NE(Term(Lang::kZhCn, TermKind::kAction, name), name) << name;
    EXPECT_EQ(Term(Lang::kEn, TermKind::kAction, name), name) << name;  // the CLI's verb
  }
  for (Role role : {Role::kAdmin, Role::kApprover, Role::kReleaseManager, Role::kTester,
                    Role::kViewer, Role::kSystem}) {
    EXPECT_NE(Term(Lang::kZhCn, TermKind::kRole, RoleName(role)), RoleName(role));
  }
  // A category of the coordinator's own stays as written; nothing stays nothing.
  EXPECT_EQ(Term(Lang::kZhCn, TermKind::kCategory, "hotfix-night"), "hotfix-night");
  EXPECT_EQ(Term(Lang::kZhCn, TermKind::kResult, ""), "");
}

// A release that rolled out to two hosts, one rolled back, then closed.
ReleaseReportFacts RolledBackFacts() {
  Release r = *CreateRelease("R-9", kOwner, kT0, FullPlan("emergency"));
  r = *SubmitRelease(r, kOwner, kT0 + 1, std::nullopt);
  r = *ApproveRelease(r, kWang, kT0 + 2, "ok");
  r = *ApproveRelease(r, kLi, kT0 + 3, "ok");
  r = *FileTestReport(testing::TestDeployed(r, kT0 + 4), kTester, kT0 + 4, TestResult::kPassed,
                      "fine", testing::kTestRunSucceeded);
  r = *AcceptRelease(r, kWang, kT0 + 5, {});
  r.state = ReleaseState::kClosed;
  r.close_code = CloseCode::kRolledBack;
  r.closure = Closure{"zhang.rm", kT0 + 9, "backed out", false, "confirmed"};
  r.history.push_back({Action::kClose, "zhang.rm", Role::kReleaseManager, kT0 + 9,
                       ReleaseState::kRolledBack, ReleaseState::kClosed, "backed out"});
  ReleaseReportFacts f;
  f.release = r;
  f.rollout = {{"rollout", {{"waves_planned", 1}}},
               {"waves", json::array({{{"wave", 1},
                                       {"hosts", 2},
                                       {"threshold", 0},
                                       {"state", "failed"},
                                       {"succeeded", 1},
                                       {"failed", 1}}})},
               {"hosts", json::array({{{"host", "web-1"},
                                       {"wave", 1},
                                       {"step", "succeeded"},
                                       {"result", "succeeded"},
                                       {"rollback", {{"result", "rolled_back"}}}},
                                      {{"host", "web-2"},
                                       {"wave", 1},
                                       {"step", "rollback_failed"},
                                       {"result", "rollback_failed"}}})}};
  f.upgrade_records = json::array({{{"host", "web-1"},
                                    {"package", "c3m-video"},
                                    {"from_version", "V1.3.0.11"},
                                    {"to_version", "V1.3.0.11"},
                                    {"kind", "rollback"},
                                    {"result", "succeeded"}}});
  f.notices = json::array(
      {{{"subscription", "N-1"}, {"event", "closed"}, {"state", "given_up"}, {"attempts", 3}}});
  return f;
}

TEST(ReleaseReportLangTest, InChineseStatesCategoriesCloseCodesAndResultsAreTheProcedures) {
  auto md =
      RenderReleaseReport(RolledBackFacts(), RecordFormat::kMarkdown, Lang::kZhCn, TimeZone::Utc());
  ASSERT_TRUE(md) << md.error().message();
  for (const char* part :
       {"# 发布报告 — R-9", "| 发布类别 | 紧急发布 |", "| 状态 | 已关闭 |",
        "| 关闭 | zhang.rm | 发布负责人 | 已回退 | 已关闭 | backed out |",
        "| 批准 | wang.approver | 发布管理负责人 | 评审中 |", "| 1 | 2 | 0 | 失败 | 1 | 1 |",
        "| web-1 | 1 | succeeded | 成功 | 已回退 |", "| web-2 | 1 | rollback_failed | 回退失败 |",
        "| web-1 | c3m-video | V1.3.0.11 | V1.3.0.11 | 回退 | 成功 |",
        "| N-1 | 已关闭 | 已放弃 | 3 |", "| 关闭代码 | 已回退 |", "| 窗口内完成 | 否 |"}) {
    EXPECT_TRUE(Has(*md, part)) << part << "\n" << *md;
  }
  for (const char* raw : {"rolled_back", "emergency", "given_up", "| closed |", "release_manager",
                          "| rollback |", "| failed |"}) {
    EXPECT_FALSE(Has(*md, raw)) << raw << "\n" << *md;
  }
  auto en =
      RenderReleaseReport(RolledBackFacts(), RecordFormat::kMarkdown, Lang::kEn, TimeZone::Utc());
  ASSERT_TRUE(en);
  for (const char* part :
       {"# Release report — R-9", "| Category | Emergency |", "| State | Closed |",
        "| close | zhang.rm | release_manager | Rolled back | Closed | backed out |",
        "| web-1 | 1 | succeeded | Succeeded | Rolled back |",
        "| web-1 | c3m-video | V1.3.0.11 | V1.3.0.11 | Rollback | Succeeded |",
        "| N-1 | Closed | Given up | 3 |", "| Close code | Rolled back |"}) {
    EXPECT_TRUE(Has(*en, part)) << part << "\n" << *en;
  }
  // JSON keeps the API's names in every language.
  const json doc = ReleaseReportJson(RolledBackFacts(), TimeZone::Utc());
  EXPECT_EQ(doc["state"], "closed");
  EXPECT_EQ(doc["close_code"], "rolled_back");
}

TEST(ReleaseReportLangTest, TheTestReportSaysItsResultInTheReadersLanguage) {
  const Release r = RolledBackFacts().release;
  auto zh = RenderTestReport(r, RecordFormat::kHtml, Lang::kZhCn, TimeZone::Utc());
  ASSERT_TRUE(zh) << zh.error().message();
  EXPECT_TRUE(Has(*zh, "<html lang=\"zh-CN\">"));
  EXPECT_TRUE(Has(*zh, "发布测试报告"));
  EXPECT_TRUE(Has(*zh, "<td>通过</td>")) << *zh;
  EXPECT_TRUE(Has(*zh, "<td>紧急发布</td>")) << *zh;
  auto en = RenderTestReport(r, RecordFormat::kMarkdown, Lang::kEn, TimeZone::Utc());
  ASSERT_TRUE(en);
  EXPECT_TRUE(Has(*en, "| Passed | chen.tester |")) << *en;
}

TEST(PeriodReportLangTest, CategoriesCloseCodesAndIncidentStatesAreInTheReadersLanguage) {
  PeriodReport report;
  report.period.label = "2026-11";
  report.time_zone = "UTC";
  report.by_category = {{"emergency", 1}, {"minor", 2}};
  ReleaseLine line;
  line.id = "R-9";
  line.category = "emergency";
  line.close_code = "rolled_back";
  report.closed_releases.push_back(line);
  report.failed_review.push_back(line);
  IncidentRecord incident;
  incident.id = "I-1";
  incident.severity = "P3";
  incident.source = "observation";
  incident.state = "open";
  report.period_incidents.push_back(incident);
  const std::string zh =
      RenderReport(report, RecordFormat::kMarkdown, Lang::kZhCn, TimeZone::Utc());
  for (const char* part : {"| 紧急发布 | 1 |", "| 一般发布 | 2 |", "| 紧急发布 | 已回退 |",
                           "| R-9 | — | 已回退 |", "| 观察期检测 | 未关闭 |"}) {
    EXPECT_TRUE(Has(zh, part)) << part << "\n" << zh;
  }
  EXPECT_FALSE(Has(zh, "rolled_back")) << zh;
  const std::string csv = RenderReport(report, RecordFormat::kCsv, Lang::kZhCn, TimeZone::Utc());
  EXPECT_TRUE(Has(csv, "closed_release,R-9,已回退 紧急发布")) << csv;
  const std::string en = RenderReport(report, RecordFormat::kHtml, Lang::kEn, TimeZone::Utc());
  EXPECT_TRUE(Has(en, "data-label=\"Emergency\"")) << en;
  EXPECT_TRUE(Has(en, "<td>Rolled back</td>")) << en;
}

}  // namespace
}  // namespace fabu::coordinator::release
