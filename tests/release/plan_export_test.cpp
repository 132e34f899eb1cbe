#include "coordinator/release/plan_export.hpp"

#include <gtest/gtest.h>

#include "tests/release/test_plans.hpp"

namespace fabu::coordinator::release {
namespace {

using testing::FullPlan;
using testing::kLi;
using testing::kOwner;
using testing::kPackageId;
using testing::kT0;
using testing::kTester;
using testing::kWang;

bool Has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

Release Accepted() {
  ReleasePlan plan = FullPlan();
  plan.Section(PlanSection::kPurpose) = "Add <script>alert(1)</script> & download | pipe";
  Release r = *CreateRelease("R-12", kOwner, kT0, plan);
  r = *SubmitRelease(r, kOwner, kT0 + 1, std::nullopt);
  r = *RejectRelease(r, kLi, kT0 + 2, "rollback plan too thin");
  r = *SubmitRelease(r, kOwner, kT0 + 3, std::nullopt);
  r = *ApproveRelease(r, kWang, kT0 + 4, "ok");
  r = *ApproveRelease(r, kLi, kT0 + 5, "fine now");
  r = *FileTestReport(testing::TestDeployed(r, kT0 + 6), kTester, kT0 + 6, TestResult::kPassed,
                      "all 16 channels play back", testing::kTestRunSucceeded);
  return *AcceptRelease(r, kWang, kT0 + 7, {});
}

const PackageCatalog kCatalog = {{kPackageId, {"c3m-video", "V1.3.0.12", 1234}}};

TEST(PlanExportTest, MarkdownHasTheNineSectionsAndTheDecisions) {
  const std::string md = ExportPlanMarkdown(Accepted(), kCatalog);
  EXPECT_TRUE(Has(md, "# Release plan R-12: C3M-VIDEO playback download"));
  for (const PlanSectionInfo& info : PlanSections()) {
    EXPECT_TRUE(Has(md, std::string(info.title_en))) << info.key;
    EXPECT_FALSE(Has(md, std::string(info.title_zh))) << info.key;  // English by default
  }
  EXPECT_TRUE(Has(md, "## 7. Rollback plan if the release fails"));
  EXPECT_TRUE(Has(md, "| Category | Minor |"));
  EXPECT_TRUE(Has(md, "| State | Accepted |"));
  EXPECT_TRUE(Has(md, "CHG-2026-0113"));
  EXPECT_TRUE(Has(md, "| c3m-video | V1.3.0.12 | 1234 | " + kPackageId + " |"));
  EXPECT_TRUE(Has(md, "| wang.approver | Approved | 2026-11-20T00:00:04Z | ok |"));
  EXPECT_TRUE(Has(md,
                  "| li.ops-head | Rejected (Review round 1) | 2026-11-20T00:00:02Z | rollback "
                  "plan too thin |"));
  EXPECT_TRUE(Has(md, "all 16 channels play back"));
  EXPECT_TRUE(Has(md, "| wang.approver | 2026-11-20T00:00:07Z | Passed |"));
  EXPECT_TRUE(Has(md, "> Add <script>"));  // free text quoted, not turned into structure
}

TEST(PlanExportTest, HtmlIsSelfContainedAndEscaped) {
  const std::string html = ExportPlanHtml(Accepted(), kCatalog);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_TRUE(Has(html, "<meta charset=\"utf-8\">"));
  EXPECT_FALSE(Has(html, "<script>"));
  EXPECT_FALSE(Has(html, "src="));
  EXPECT_TRUE(Has(html, "Add &lt;script&gt;alert(1)&lt;/script&gt; &amp; download | pipe"));
  EXPECT_TRUE(Has(html, "<td>" + kPackageId + "</td>"));
  EXPECT_TRUE(Has(html, "<html lang=\"en\">"));
  EXPECT_TRUE(Has(html, "Scope of impact")) << html;
  EXPECT_TRUE(Has(html, "</html>"));
}

TEST(PlanExportTest, JsonCarriesSectionsPackagesAndDecisions) {
  const nlohmann::json doc = ExportPlanJson(Accepted(), kCatalog);
  EXPECT_EQ(doc["document"], "release_plan");
  ASSERT_EQ(doc["sections"].size(), 9u);
  EXPECT_EQ(doc["sections"][6]["key"], "rollback_plan");
  EXPECT_EQ(doc["sections"][6]["title_zh"], "发布失败情况下的退回方案");
  EXPECT_EQ(doc["packages"][0]["sha256"], kPackageId);
  EXPECT_EQ(doc["packages"][0]["name"], "c3m-video");
  EXPECT_EQ(doc["approvals"].size(), 2u);
  EXPECT_EQ(doc["approvals"][1]["comment"], "fine now");
  EXPECT_EQ(doc["rejections"][0]["comment"], "rollback plan too thin");
  EXPECT_EQ(doc["acceptance"]["by"], "wang.approver");
  EXPECT_EQ(doc["state"], "accepted");
  EXPECT_EQ(doc["test_reports"][0]["result"], "passed");
  EXPECT_EQ(doc["history"].size(), 9u);  // with the test deployment
  EXPECT_FALSE(doc["frozen_content_digest"].get<std::string>().empty());
}

TEST(PlanExportTest, EmergencyWaiverIsFlagged) {
  Release r = *CreateRelease("R-13", kOwner, kT0, FullPlan("emergency"));
  r = *SubmitRelease(r, kOwner, kT0, std::nullopt);
  r = *ApproveRelease(r, kWang, kT0, "");
  r = *ApproveRelease(r, kLi, kT0, "");
  r = *AcceptRelease(r, kWang, kT0, {.waive_test = true, .reason = "outage", .comment = ""});
  EXPECT_TRUE(Has(ExportPlanMarkdown(r), "EMERGENCY RELEASE: TESTING WAIVED"));
  EXPECT_TRUE(Has(ExportPlanMarkdown(r), "⚠ Test waived (emergency): outage"));
  EXPECT_TRUE(Has(ExportPlanHtml(r), "TESTING WAIVED"));
  const std::string zh = ExportPlanMarkdown(r, {}, Lang::kZhCn);
  EXPECT_TRUE(Has(zh, "紧急发布：已免除测试")) << zh;
  EXPECT_TRUE(Has(zh, "⚠ 紧急发布免测试: outage")) << zh;
  EXPECT_TRUE(Has(zh, "| 发布类别 | 紧急发布 |")) << zh;
}

// Given --lang zh-CN, the plan reads in the procedure's terms only: its
// title, the nine sections' own titles, the go-live plan (上线方案), the
// state and category, each decision and the test result.
TEST(PlanExportTest, InChineseEveryLabelAndTermIsTheProcedures) {
  const std::string md = ExportPlanMarkdown(Accepted(), kCatalog, Lang::kZhCn);
  EXPECT_TRUE(Has(md, "# 发布方案 R-12: C3M-VIDEO playback download")) << md;
  for (const PlanSectionInfo& info : PlanSections()) {
    EXPECT_TRUE(Has(md, std::string(info.title_zh))) << info.key;
    EXPECT_FALSE(Has(md, std::string(info.title_en))) << info.key;
  }
  for (const char* part :
       {"## 7. 发布失败情况下的退回方案", "| 产品 | c3m-video |", "| 发布类别 | 一般发布 |",
        "| 状态 | 已验收 |", "## 变更请求", "## 软件包", "## 目标主机", "主机标签: ", "## 上线方案",
        "| 自动回退 | 是 |", "## 评审", "| 评审人 | 评审结论 | 时间 | 意见 |",
        "| wang.approver | 批准 | 2026-11-20T00:00:04Z | ok |",
        "| li.ops-head | 驳回 (评审轮次 1) |", "### 通过 — chen.tester", "## 测试验收",
        "| wang.approver | 2026-11-20T00:00:07Z | 通过 |"}) {
    EXPECT_TRUE(Has(md, part)) << part << "\n" << md;
  }
  for (const char* english :
       {"Release plan", "Approved", "Passed", "Go-live", "Reviewer", "(not", "accepted", "minor"}) {
    EXPECT_FALSE(Has(md, english)) << english << "\n" << md;
  }
  const std::string html = ExportPlanHtml(Accepted(), kCatalog, Lang::kZhCn);
  EXPECT_TRUE(Has(html, "<html lang=\"zh-CN\">"));
  EXPECT_TRUE(Has(html, "<title>发布方案 R-12 C3M-VIDEO playback download</title>")) << html;
  EXPECT_TRUE(Has(html, "发布影响范围"));
  // JSON is the API's whatever the language.
  EXPECT_EQ(ExportPlan(Accepted(), ExportFormat::kJson, kCatalog, Lang::kZhCn),
            ExportPlan(Accepted(), ExportFormat::kJson, kCatalog, Lang::kEn));
}

TEST(PlanExportTest, FormatNames) {
  EXPECT_EQ(*ParseExportFormat("md"), ExportFormat::kMarkdown);
  EXPECT_EQ(*ParseExportFormat("html"), ExportFormat::kHtml);
  EXPECT_EQ(*ParseExportFormat("json"), ExportFormat::kJson);
  EXPECT_FALSE(ParseExportFormat("pdf"));
  EXPECT_EQ(EscapeHtml("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;");
}

}  // namespace
}  // namespace fabu::coordinator::release
