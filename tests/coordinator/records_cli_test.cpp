// The records on the real fabu-coordinator, driven by the real fabu CLI:
// incidents added, listed and closed; review notes stored
// and audited; the period report as JSON (the API's), CSV, Markdown in the
// procedure's Chinese terms, and HTML with its charts.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "tests/support/coordinator_process.hpp"
#include "tests/support/people_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::testing {
namespace {

using nlohmann::json;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The current month in Asia/Shanghai (UTC+8 all year), "YYYY-MM".
std::string ShanghaiMonth() {
  using namespace std::chrono;
  const auto local = floor<days>(system_clock::now() + hours(8));
  const year_month_day ymd(local);
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()));
  return text;
}

class RecordsCliTest : public fabu::testing::CoordinatorWithPeople {
 protected:
  void SetUp() override {
    CoordinatorWithPeople::SetUp();
    if (HasFatalFailure()) return;
    WriteFile(dir_ / "app/bin/c3m-video", "#!/bin/sh\necho playback\n");
    auto built = Fabu({"pack", "build", "--name", "c3m-video", "--version", "V1.3.0.12", "--from",
                       (dir_ / "app").string(), "--key", (dir_ / "publisher.key").string(), "--out",
                       (dir_ / "c3m.fabu").string()});
    ASSERT_EQ(built.exit_code, 0) << built.err;
    auto uploaded = As(rm_, {"package", "upload", (dir_ / "c3m.fabu").string()});
    ASSERT_EQ(uploaded.exit_code, 0) << uploaded.err;
    package_id_ = LastLine(uploaded.out);
  }

  // A release rejected once in review.
  std::string RejectedRelease() {
    json plan = {{"title", "C3M-VIDEO playback, download"},
                 {"product", "c3m-video"},
                 {"version", "V1.3.0.12"},
                 {"category", "minor"},
                 {"change_refs", {"CHG-2026-0113"}},
                 {"plan",
                  {{"purpose", "p"},
                   {"scope", "s"},
                   {"participants", "pa"},
                   {"communication", "c"},
                   {"work_plan", "w"},
                   {"follow_up", "f"},
                   {"rollback_plan", "r"},
                   {"known_issues", "k"},
                   {"baseline", "b"}}},
                 {"packages", {package_id_}},
                 {"targets", {{"selector", "app=c3m-video"}}},
                 {"reviewers", {"wang.approver"}}};
    WriteFile(dir_ / "plan.json", plan.dump());
    auto created = As(rm_, {"release", "create", "--file", (dir_ / "plan.json").string()});
    EXPECT_EQ(created.exit_code, 0) << created.err;
    const std::string id = LastLine(created.out);
    EXPECT_EQ(As(rm_, {"release", "submit", id}).exit_code, 0);
    auto rejected = As(wang_, {"release", "reject", id, "--comment", "rollback plan too thin"});
    EXPECT_EQ(rejected.exit_code, 0) << rejected.err;
    return id;
  }

  std::string package_id_;
};

TEST_F(RecordsCliTest, IncidentsAreAddedListedAndClosed) {
  const std::string id = RejectedRelease();
  auto added = As(rm_, {"incident", "add", "--release", id, "--severity", "P2", "--summary",
                        "playback stalls, on web-3", "--host", "web-3", "--json"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  const json incident = json::parse(added.out);
  EXPECT_EQ(incident["severity"], "P2");
  EXPECT_EQ(incident["source"], "manual");
  EXPECT_EQ(incident["state"], "open");
  const std::string incident_id = incident["id"];

  // Wrong severity, unknown release, empty summary: refused, naming the field.
  auto bad = As(rm_, {"incident", "add", "--release", id, "--severity", "P9", "--summary", "x"});
  EXPECT_NE(bad.exit_code, 0);
  auto unknown =
      As(rm_, {"incident", "add", "--release", "R-99", "--severity", "P1", "--summary", "x"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_TRUE(Contains(unknown.err, "R-99")) << unknown.err;
  auto empty = As(rm_, {"incident", "add", "--release", id, "--severity", "P1", "--summary", " "});
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_TRUE(Contains(empty.err, "summary")) << empty.err;
  // A viewer may read but not record.
  EXPECT_NE(As(viewer_, {"incident", "add", "--release", id, "--severity", "P1", "--summary", "x"})
                .exit_code,
            0);

  auto list = As(viewer_, {"incident", "list", "--release", id});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(Contains(list.out, incident_id));
  EXPECT_TRUE(Contains(list.out, "playback stalls"));

  auto closed = As(wang_, {"incident", "close", incident_id});
  ASSERT_EQ(closed.exit_code, 0) << closed.err;
  auto again = As(wang_, {"incident", "close", incident_id});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(Contains(again.err, "already")) << again.err;
  auto listed = json::parse(As(viewer_, {"incident", "list", "--json"}).out);
  ASSERT_EQ(listed["incidents"].size(), 1u);
  EXPECT_EQ(listed["incidents"][0]["state"], "closed");
  EXPECT_EQ(listed["incidents"][0]["closed_by"], "wang.approver");

  auto audit = As(admin_, {"audit", "list", "--release", id, "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(Contains(audit.out, "incident.create"));
  EXPECT_TRUE(Contains(audit.out, "incident.close"));
}

TEST_F(RecordsCliTest, ReviewNotesAreStoredAndAudited) {
  const std::string id = RejectedRelease();
  WriteFile(dir_ / "notes.md", "# Review\nThe rollback plan named no version.\n");
  auto stored = As(rm_, {"release", "review-notes", id, "--file", (dir_ / "notes.md").string()});
  ASSERT_EQ(stored.exit_code, 0) << stored.err;
  auto missing = As(rm_, {"release", "review-notes", id, "--file", (dir_ / "nope.md").string()});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(Contains(missing.err, "--file")) << missing.err;
  EXPECT_NE(As(viewer_, {"release", "review-notes", id, "--file", (dir_ / "notes.md").string()})
                .exit_code,
            0);
  auto audit = As(admin_, {"audit", "list", "--release", id, "--json"});
  EXPECT_TRUE(Contains(audit.out, "release.review-notes")) << audit.out;
}

TEST_F(RecordsCliTest, TheReportCountsWhatTheStoreRecordedInEveryFormat) {
  const std::string id = RejectedRelease();
  ASSERT_EQ(
      As(rm_, {"incident", "add", "--release", id, "--severity", "P3", "--summary", "slow start"})
          .exit_code,
      0);
  const std::string month = ShanghaiMonth();

  auto json_report = As(viewer_, {"report", "--month", month, "--format", "json"});
  ASSERT_EQ(json_report.exit_code, 0) << json_report.err;
  const json report = json::parse(json_report.out);
  EXPECT_EQ(report["period"]["label"], month);
  EXPECT_EQ(report["period"]["time_zone"], "Asia/Shanghai");
  EXPECT_EQ(report["closed"], 0);
  EXPECT_EQ(report["success_ratio"]["text"], "n/a");
  EXPECT_EQ(report["rejected_in_review"]["releases"], 1);
  EXPECT_EQ(report["incidents"]["by_severity"]["P3"], 1);
  EXPECT_EQ(report["trend"].size(), 12u);

  auto csv = As(viewer_, {"report", "--month", month, "--format", "csv", "--out",
                          (dir_ / "report.csv").string()});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  const std::string csv_text = ReadFile(dir_ / "report.csv");
  EXPECT_TRUE(Contains(csv_text, "section,key,value\r\n")) << csv_text;
  EXPECT_TRUE(Contains(csv_text, "kpi,Success ratio,n/a")) << csv_text;

  auto zh = As(viewer_, {"report", "--month", month, "--format", "md", "--lang", "zh-CN"});
  ASSERT_EQ(zh.exit_code, 0) << zh.err;
  for (const char* term : {"发布管理报告", "发布成功率", "发布及时率", "评审未通过的发布"}) {
    EXPECT_TRUE(Contains(zh.out, term)) << term << "\n" << zh.out;
  }

  auto html = As(viewer_, {"report", "--from", "2020-01-01", "--to", "2100-01-01", "--format",
                           "html", "--out", (dir_ / "report.html").string()});
  ASSERT_EQ(html.exit_code, 0) << html.err;
  const std::string page = ReadFile(dir_ / "report.html");
  EXPECT_TRUE(Contains(page, "<svg id=\"chart-category\""));
  EXPECT_TRUE(Contains(page, "<svg id=\"chart-trend\""));

  // Errors name what is wrong.
  auto no_period = As(viewer_, {"report", "--format", "json"});
  EXPECT_NE(no_period.exit_code, 0);
  EXPECT_TRUE(Contains(no_period.err, "--month")) << no_period.err;
  auto bad_month = As(viewer_, {"report", "--month", "2026-13"});
  EXPECT_NE(bad_month.exit_code, 0);
  EXPECT_TRUE(Contains(bad_month.err, "month")) << bad_month.err;
  auto reversed = As(viewer_, {"report", "--from", "2026-03-10", "--to", "2026-03-01"});
  EXPECT_NE(reversed.exit_code, 0);
  EXPECT_TRUE(Contains(reversed.err, "to:")) << reversed.err;
}

TEST_F(RecordsCliTest, TheReleaseRecordsAreExportedInEveryFormatAndLanguage) {
  const std::string id = RejectedRelease();
  ASSERT_EQ(As(rm_, {"incident", "add", "--release", id, "--severity", "P4", "--summary",
                     "a typo | in the notice"})
                .exit_code,
            0);
  auto md = As(viewer_, {"release", "export", id, "--doc", "release-report"});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_TRUE(Contains(md.out, "# Release report")) << md.out;
  EXPECT_TRUE(Contains(md.out, "| reject |")) << md.out;
  EXPECT_TRUE(Contains(md.out, "wang.approver"));
  EXPECT_TRUE(Contains(md.out, "a typo \\| in the notice")) << md.out;

  auto json_doc =
      As(viewer_, {"release", "export", id, "--doc", "release-report", "--format", "json"});
  ASSERT_EQ(json_doc.exit_code, 0) << json_doc.err;
  const json doc = json::parse(json_doc.out);
  EXPECT_EQ(doc["timeline"].size(), 3u);  // create, submit, reject
  EXPECT_EQ(doc["timeline"][2]["action"], "reject");
  EXPECT_EQ(doc["incidents"].size(), 1u);
  EXPECT_TRUE(doc["closure"].is_null());

  auto zh = As(viewer_, {"release", "export", id, "--doc", "test-report", "--lang", "zh-CN"});
  ASSERT_EQ(zh.exit_code, 0) << zh.err;
  EXPECT_TRUE(Contains(zh.out, "发布测试报告")) << zh.out;
  auto zh_report = As(viewer_, {"release", "export", id, "--doc", "release-report", "--lang",
                                "zh-CN", "--format", "html"});
  ASSERT_EQ(zh_report.exit_code, 0) << zh_report.err;
  EXPECT_TRUE(Contains(zh_report.out, "发布报告"));
  EXPECT_TRUE(Contains(zh_report.out, "<svg id=\"chart-waves\""));

  auto csv = As(viewer_, {"release", "export", id, "--doc", "release-report", "--format", "csv"});
  EXPECT_NE(csv.exit_code, 0);
  EXPECT_TRUE(Contains(csv.err, "format")) << csv.err;
}

// HTML records load in headless Chromium with no console errors, and the
// charts and numbers are in the rendered page.
TEST_F(RecordsCliTest, HtmlRecordsLoadInHeadlessChromium) {
  const std::filesystem::path chromium = "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium)) {
    FAIL() << "/usr/bin/chromium is missing (Debian's chromium; scripts/bootstrap installs it)";
  }
  const std::string id = RejectedRelease();
  ASSERT_EQ(As(rm_, {"incident", "add", "--release", id, "--severity", "P2", "--summary",
                     "<script>alert(1)</script>"})
                .exit_code,
            0);
  const auto report = dir_ / "report.html";
  const auto record = dir_ / "release-report.html";
  ASSERT_EQ(As(viewer_, {"report", "--from", "2020-01-01", "--to", "2100-01-01", "--format", "html",
                         "--lang", "zh-CN", "--out", report.string()})
                .exit_code,
            0);
  ASSERT_EQ(As(viewer_, {"release", "export", id, "--doc", "release-report", "--format", "html",
                         "--out", record.string()})
                .exit_code,
            0);
  const std::filesystem::path shots = std::filesystem::path(FABU_BUILD_DIR) / "records-screenshots";
  std::filesystem::create_directories(shots);

  auto load = [&](const std::filesystem::path& page, const std::string& shot) {
    const std::vector<std::string> common = {
        chromium.string(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        "--user-data-dir=" + (dir_ / ("chromium-" + shot)).string()};
    std::vector<std::string> dump = common;
    dump.push_back("--dump-dom");
    dump.push_back("file://" + page.string());
    auto dom = RunCommand(dump, {}, std::chrono::seconds(90));
    EXPECT_EQ(dom.exit_code, 0) << dom.err;
    if (dom.exit_code != 0 && Contains(dom.err, "--no-sandbox")) {
      ADD_FAILURE() << "chromium cannot run here: " << dom.err;
    }
    // Chromium logs every console message as INFO:CONSOLE.
    EXPECT_FALSE(Contains(dom.err, ":CONSOLE")) << dom.err;
    std::vector<std::string> screenshot = common;
    screenshot.push_back("--screenshot=" + (shots / (shot + ".png")).string());
    screenshot.push_back("--window-size=1200,2400");
    screenshot.push_back("file://" + page.string());
    auto shot_run = RunCommand(screenshot, {}, std::chrono::seconds(90));
    EXPECT_EQ(shot_run.exit_code, 0) << shot_run.err;
    EXPECT_TRUE(std::filesystem::exists(shots / (shot + ".png")));
    return dom.out;
  };

  const std::string report_dom = load(report, "period-report");
  EXPECT_TRUE(Contains(report_dom, "id=\"chart-category\"")) << report_dom;
  EXPECT_TRUE(Contains(report_dom, "id=\"chart-trend\""));
  EXPECT_TRUE(Contains(report_dom, "data-months=\"12\""));
  EXPECT_TRUE(Contains(report_dom, "发布成功率"));
  EXPECT_TRUE(Contains(report_dom, "<td>评审未通过的发布</td><td>1</td>")) << report_dom;

  const std::string record_dom = load(record, "release-report");
  EXPECT_TRUE(Contains(record_dom, "id=\"chart-waves\""));
  EXPECT_TRUE(Contains(record_dom, "<td>reject</td><td>wang.approver</td>")) << record_dom;
  // The incident's text is shown as text, never run.
  EXPECT_TRUE(Contains(record_dom, "&lt;script&gt;alert(1)&lt;/script&gt;")) << record_dom;
}

}  // namespace
}  // namespace fabu::testing
