// The upgrade record table (升级记录表, coordinator/cmdb/upgrade_export.hpp)
// in both languages: its title, columns, results and kinds in the
// procedure's words with zh-CN; English labels in Markdown and HTML; the
// English CSV keeping the API's keys and values.
#include "coordinator/cmdb/upgrade_export.hpp"

#include <gtest/gtest.h>

namespace fabu::coordinator {
namespace {

using release::Lang;

bool Has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

std::vector<UpgradeRecord> Records() {
  UpgradeRecord install;
  install.deployment_id = "D-3";
  install.release_id = "R-2";
  install.host = "web-1";
  install.package = "c3m-video";
  install.from_version = "V1.3.0.11";
  install.to_version = "V1.3.0.12";
  install.started = 1796000400;  // 2026-11-30T01:00:00Z
  install.finished = 1796000460;
  install.result = DeploymentResult::kRolledBack;
  install.operator_name = "zhang.rm";
  install.kind = "install";
  UpgradeRecord rollback = install;
  rollback.deployment_id = "D-4";
  rollback.from_version = "V1.3.0.12";
  rollback.to_version = "V1.3.0.11";
  rollback.result = DeploymentResult::kSucceeded;
  rollback.kind = "rollback";
  return {install, rollback};
}

CmdbConfirmation Confirmation() {
  CmdbConfirmation c;
  c.records = 2;
  c.delivered = 2;
  c.confirmed = true;
  return c;
}

TEST(UpgradeExportTest, InChineseTheTableReadsInTheProceduresTerms) {
  auto md = ExportUpgradeRecords("R-2", Records(), Confirmation(), "md", Lang::kZhCn);
  ASSERT_TRUE(md) << md.error().message();
  for (const char* part :
       {"# 升级记录表 — R-2",
        "共 2 条记录；外部推送：已推送 2，已豁免 0，待推送 0，推送失败 0；CMDB更新已确认",
        "| 主机 | 软件包 | 原版本 | 新版本 | 开始时间 | 结束时间 | 结果 | 发布编号 | 操作人 | 类型 "
        "| 部署编号 |",
        "| web-1 | c3m-video | V1.3.0.11 | V1.3.0.12 | 2026-11-30T01:00:00Z | 2026-11-30T01:01:00Z "
        "| 已回退 | R-2 | zhang.rm | 升级 | D-3 |",
        "| 成功 | R-2 | zhang.rm | 回退 | D-4 |"}) {
    EXPECT_TRUE(Has(*md, part)) << part << "\n" << *md;
  }
  EXPECT_FALSE(Has(*md, "rolled_back")) << *md;
  auto csv = ExportUpgradeRecords("R-2", Records(), Confirmation(), "csv", Lang::kZhCn);
  ASSERT_TRUE(csv);
  EXPECT_TRUE(Has(
      *csv, "主机,软件包,原版本,新版本,开始时间,结束时间,结果,发布编号,操作人,类型,部署编号\r\n"))
      << *csv;
  EXPECT_TRUE(Has(*csv, ",已回退,R-2,zhang.rm,升级,D-3\r\n")) << *csv;
  auto html = ExportUpgradeRecords("R-2", Records(), Confirmation(), "html", Lang::kZhCn);
  ASSERT_TRUE(html);
  EXPECT_TRUE(Has(*html, "<html lang=\"zh-CN\">"));
  EXPECT_TRUE(Has(*html, "<td>已回退</td>")) << *html;
}

TEST(UpgradeExportTest, InEnglishLabelsAreEnglishAndTheCsvKeepsTheApisNames) {
  auto csv = ExportUpgradeRecords("R-2", Records(), Confirmation(), "csv");
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->substr(0, csv->find('\n') + 1),
            "host,package,from,to,started,finished,result,release,operator,kind,deployment\r\n");
  EXPECT_TRUE(Has(*csv, "web-1,c3m-video,V1.3.0.11,V1.3.0.12,"));
  EXPECT_TRUE(Has(*csv, ",rolled_back,R-2,zhang.rm,install,D-3\r\n")) << *csv;
  auto md = ExportUpgradeRecords("R-2", Records(), Confirmation(), "md", Lang::kEn);
  ASSERT_TRUE(md);
  EXPECT_TRUE(Has(*md, "# Upgrade record table — R-2")) << *md;
  EXPECT_TRUE(Has(*md,
                  "2 record(s); outward deliveries: 2 delivered, 0 waived, 0 pending, 0 "
                  "failing; CMDB update confirmed"))
      << *md;
  EXPECT_TRUE(Has(*md, "| Rolled back | R-2 | zhang.rm | Install | D-3 |")) << *md;
  auto json_en = ExportUpgradeRecords("R-2", Records(), Confirmation(), "json", Lang::kEn);
  auto json_zh = ExportUpgradeRecords("R-2", Records(), Confirmation(), "json", Lang::kZhCn);
  ASSERT_TRUE(json_en && json_zh);
  EXPECT_EQ(*json_en, *json_zh);
  EXPECT_FALSE(ExportUpgradeRecords("R-2", Records(), Confirmation(), "pdf"));
}

}  // namespace
}  // namespace fabu::coordinator
