// `fabu release template` prints a complete plan with comments, offline
// (docs/plan.md). That a coordinator accepts it, filled in, is tested in
// tests/coordinator/release_flow_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/support/run_command.hpp"

namespace fabu::testing {
namespace {

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ReleaseTemplateCliTest, PrintsTheCommentedPlanWithoutACoordinator) {
  // A server that is not there: the command must not need it.
  auto r = RunCommand({FabuCli(), "release", "template"}, {}, std::chrono::seconds(30),
                      {"FABU_SERVER=https://127.0.0.1:9", "FABU_TOKEN=none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_TRUE(Has(r.out, "\npackages: [\"<the id printed by fabu package upload>\"]\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "\ngolive:\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "\ncategory: minor\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "# ")) << r.out;
}

TEST(ReleaseTemplateCliTest, ChineseAndEmergency) {
  auto zh = Fabu({"release", "template", "--lang", "zh-CN"});
  ASSERT_EQ(zh.exit_code, 0) << zh.err;
  EXPECT_TRUE(Has(zh.out, "发布方案")) << zh.out;
  EXPECT_TRUE(Has(zh.out, "\npackages: [")) << zh.out;

  auto emergency = Fabu({"release", "template", "--emergency", "--lang", "en"});
  ASSERT_EQ(emergency.exit_code, 0) << emergency.err;
  EXPECT_TRUE(Has(emergency.out, "\ncategory: emergency\n")) << emergency.out;
  EXPECT_TRUE(Has(emergency.out, "--waive-test")) << emergency.out;
}

TEST(ReleaseTemplateCliTest, AnotherLanguageIsAUsageErrorNamingIt) {
  auto r = Fabu({"release", "template", "--lang", "fr"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(Has(r.err, "--lang")) << r.err;
  EXPECT_TRUE(Has(r.err, "fr")) << r.err;
  EXPECT_TRUE(Has(r.err, "zh-CN")) << r.err;  // and says what it may be
}

}  // namespace
}  // namespace fabu::testing
