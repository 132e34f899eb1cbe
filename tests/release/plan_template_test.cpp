#include "coordinator/release/plan_template.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/release/release_plan.hpp"
#include "coordinator/release/structured_input.hpp"
#include "tests/release/test_plans.hpp"
#include "tests/support/plan_template_fill.hpp"

namespace fabu::coordinator::release {
namespace {

using nlohmann::json;

struct Case {
  Lang lang;
  PlanTemplateVariant variant;
  std::string name;
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> kCases = {
      {Lang::kEn, PlanTemplateVariant::kNormal, "en"},
      {Lang::kEn, PlanTemplateVariant::kEmergency, "en --emergency"},
      {Lang::kZhCn, PlanTemplateVariant::kNormal, "zh-CN"},
      {Lang::kZhCn, PlanTemplateVariant::kEmergency, "zh-CN --emergency"},
  };
  return kCases;
}

bool Has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

std::string DocsPlanMd() {
  std::ifstream in(std::string(FABU_SOURCE_DIR) + "/docs/plan.md");
  EXPECT_TRUE(in) << "docs/plan.md";
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The cells of a Markdown table row "| a | b |": {"a", "b"}.
std::vector<std::string> Cells(const std::string& row) {
  std::vector<std::string> cells;
  std::istringstream in(row.substr(1));
  std::string cell;
  while (std::getline(in, cell, '|')) {
    const auto begin = cell.find_first_not_of(' ');
    const auto end = cell.find_last_not_of(' ');
    cells.push_back(begin == std::string::npos ? "" : cell.substr(begin, end - begin + 1));
  }
  return cells;
}

// Every field docs/plan.md documents: the `names` in the first cell of its
// tables' rows ("golive.window.start", "plan.purpose", "title", ...).
std::vector<std::string> DocumentedFields() {
  std::vector<std::string> fields;
  std::istringstream page(DocsPlanMd());
  const std::regex name("`([a-z_.]+)`");
  for (std::string line; std::getline(page, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    const std::string first = Cells(line).at(0);
    for (std::sregex_iterator it(first.begin(), first.end(), name), end; it != end; ++it) {
      fields.push_back((*it)[1].str());
    }
  }
  return fields;
}

// The 发布方案 part names of docs/plan.md's table of the nine parts (its second column).
std::vector<std::string> DocumentedPartNames() {
  std::vector<std::string> names;
  std::istringstream page(DocsPlanMd());
  for (std::string line; std::getline(page, line);) {
    if (line.rfind("| `plan.", 0) == 0) names.push_back(Cells(line).at(1));
  }
  return names;
}

std::string Filled(const Case& c) {
  auto filled = fabu::testing::FillTemplatePlaceholders(
      PlanTemplate(c.lang, c.variant), fabu::testing::TemplateValues(testing::kPackageId));
  EXPECT_TRUE(filled.unknown_keys.empty())
      << c.name << ": placeholders on lines of unknown fields: "
      << ::testing::PrintToString(filled.unknown_keys);
  EXPECT_EQ(filled.filled, 18) << c.name;
  return filled.text;
}

TEST(PlanTemplateTest, EachTemplateFilledInIsASubmittablePlan) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    auto plan = ParseReleasePlan(Filled(c));
    ASSERT_TRUE(plan) << plan.error().message();
    EXPECT_TRUE(CheckSubmittable(*plan)) << CheckSubmittable(*plan).error().message();
    EXPECT_EQ(plan->packages, std::vector<std::string>{testing::kPackageId});
    ASSERT_TRUE(plan->golive);
    EXPECT_EQ(plan->golive->waves.size(), 3u);
    EXPECT_EQ(plan->golive->window.start.text, "2036-12-01T01:00:00+08:00");
    const bool emergency = c.variant == PlanTemplateVariant::kEmergency;
    EXPECT_EQ(plan->category, emergency ? "emergency" : "minor");
    EXPECT_EQ(plan->golive->gate_between_waves, emergency);
  }
}

TEST(PlanTemplateTest, AnUnfilledTemplateIsRefused) {
  for (const Case& c : Cases()) {
    EXPECT_FALSE(ParseReleasePlan(PlanTemplate(c.lang, c.variant))) << c.name;
  }
}

// Given a template whose checked fields are filled but whose free texts are
// still placeholders, submit should refuse it and name each one left.
TEST(PlanTemplateTest, FreeTextLeftAsAPlaceholderCannotBeSubmitted) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    auto values = fabu::testing::TemplateValues(testing::kPackageId);
    for (const char* key : {"title", "purpose", "rollback_plan", "change_refs", "reviewers"}) {
      values.erase(key);
    }
    const auto filled =
        fabu::testing::FillTemplatePlaceholders(PlanTemplate(c.lang, c.variant), values);
    auto plan = ParseReleasePlan(filled.text);
    ASSERT_TRUE(plan) << plan.error().message();
    auto refused = CheckSubmittable(*plan);
    ASSERT_FALSE(refused);
    const std::string& message = refused.error().message();
    for (const char* named : {"title is still the template's placeholder", "plan.purpose (",
                              "plan.rollback_plan (", "change_refs: <", "reviewers: <"}) {
      EXPECT_NE(message.find(named), std::string::npos) << named << " in: " << message;
    }
    EXPECT_EQ(message.find("plan.scope"), std::string::npos) << message;
  }
}

TEST(PlanTemplateTest, EveryFieldOfDocsPlanMdIsInEachTemplate) {
  const std::vector<std::string> fields = DocumentedFields();
  // title .. reviewers (9 with targets.late_joiners), the nine parts, golive
  // (10 with window start and end, and checks).
  ASSERT_EQ(fields.size(), 28u) << ::testing::PrintToString(fields);
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    auto document = ParseDocument(Filled(c));
    ASSERT_TRUE(document) << document.error().message();
    for (const std::string& field : fields) {
      std::string pointer = "/" + field;
      for (char& ch : pointer) {
        if (ch == '.') ch = '/';
      }
      EXPECT_TRUE(document->contains(json::json_pointer(pointer))) << field;
    }
  }
}

TEST(PlanTemplateTest, EveryFieldLineHasACommentAbove) {
  const std::regex field_line("^ *[a-z_]+:( .*)?$");
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    std::istringstream text(PlanTemplate(c.lang, c.variant));
    std::string previous;
    int fields = 0;
    for (std::string line; std::getline(text, line); previous = line) {
      const auto first = line.find_first_not_of(' ');
      if (first == std::string::npos || line[first] == '#') continue;
      ASSERT_TRUE(std::regex_match(line, field_line)) << "not a field line: " << line;
      ++fields;
      const auto previous_first = previous.find_first_not_of(' ');
      EXPECT_TRUE(previous_first != std::string::npos && previous[previous_first] == '#')
          << "no comment above: " << line;
      EXPECT_EQ(previous_first, first) << "comment not indented as its field: " << line;
    }
    // The 28 fields of docs/plan.md and the objects plan, targets, golive, golive.window.
    EXPECT_EQ(fields, 32) << c.name;
  }
}

// The comments say what each field is, its default and its procedure §.
TEST(PlanTemplateTest, CommentsNameTheDefaultAndTheProcedure) {
  for (const Case& c : Cases()) {
    const std::string text = PlanTemplate(c.lang, c.variant);
    const bool zh = c.lang == Lang::kZhCn;
    EXPECT_TRUE(Has(text, zh ? "默认 \"0\"" : "default \"0\"")) << c.name;
    EXPECT_TRUE(Has(text, zh ? "无默认值" : "no default")) << c.name;
    for (std::string_view section :
         {"§6.2.1(1)", "§6.2.1(9)", "§6.1.3", "§1.4", "§6.2.2", "§6.2.4", "§4.5", "§6.1.1(4)"}) {
      EXPECT_TRUE(Has(text, section)) << c.name << ": " << section;
    }
  }
}

TEST(PlanTemplateTest, TheFieldNamesAreTheSameInEveryLanguage) {
  const auto keys = [](const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      const auto first = line.find_first_not_of(' ');
      if (first == std::string::npos || line[first] == '#') continue;
      out.push_back(line.substr(0, line.find(':')));
    }
    return out;
  };
  for (PlanTemplateVariant variant :
       {PlanTemplateVariant::kNormal, PlanTemplateVariant::kEmergency}) {
    EXPECT_EQ(keys(PlanTemplate(Lang::kEn, variant)), keys(PlanTemplate(Lang::kZhCn, variant)));
  }
  EXPECT_EQ(keys(PlanTemplate(Lang::kEn, PlanTemplateVariant::kNormal)),
            keys(PlanTemplate(Lang::kEn, PlanTemplateVariant::kEmergency)));
}

TEST(PlanTemplateTest, TheEnglishTemplateUsesTheDocsPlaceholderForThePackage) {
  const std::string text = PlanTemplate(Lang::kEn, PlanTemplateVariant::kNormal);
  EXPECT_TRUE(Has(text, "packages: [\"<the id printed by fabu package upload>\"]")) << text;
  EXPECT_TRUE(Has(text, "fabu release create --file plan.yaml"));
}

TEST(PlanTemplateTest, TheChineseTemplateUsesTheProcedureTerms) {
  for (PlanTemplateVariant variant :
       {PlanTemplateVariant::kNormal, PlanTemplateVariant::kEmergency}) {
    const std::string text = PlanTemplate(Lang::kZhCn, variant);
    for (std::string_view term : {"发布方案", "上线计划", "发布窗口", "发布批次", "发布类别"}) {
      EXPECT_TRUE(Has(text, term)) << term;
    }
    for (const PlanSectionInfo& info : PlanSections()) {
      EXPECT_TRUE(Has(text, info.title_zh)) << info.title_zh;
    }
    const std::vector<std::string> parts = DocumentedPartNames();
    ASSERT_EQ(parts.size(), kPlanSectionCount);
    for (const std::string& part : parts) EXPECT_TRUE(Has(text, part)) << part;
    // Placeholders are Chinese too; the English ones are not left behind.
    EXPECT_FALSE(Has(text, "<the id printed by fabu package upload>"));
    EXPECT_TRUE(Has(text, "<fabu package upload 打印的软件包编号>"));
  }
}

TEST(PlanTemplateTest, TheEmergencyTemplateSaysWhatDiffers) {
  for (Lang lang : {Lang::kEn, Lang::kZhCn}) {
    const std::string normal = PlanTemplate(lang, PlanTemplateVariant::kNormal);
    const std::string emergency = PlanTemplate(lang, PlanTemplateVariant::kEmergency);
    EXPECT_TRUE(Has(emergency, "\ncategory: emergency\n"));
    EXPECT_TRUE(Has(emergency, "  between_waves: gate\n"));
    EXPECT_TRUE(Has(emergency, "fabu release accept R --waive-test --reason"));
    EXPECT_TRUE(Has(emergency, "fabu release override-freeze R --reason"));
    EXPECT_TRUE(Has(emergency, lang == Lang::kZhCn ? "紧急发布" : "EMERGENCY RELEASE"));
    EXPECT_TRUE(Has(normal, "\ncategory: minor\n"));
    EXPECT_FALSE(Has(normal, "override-freeze"));
  }
}

}  // namespace
}  // namespace fabu::coordinator::release
