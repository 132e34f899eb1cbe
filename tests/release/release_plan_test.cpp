#include "coordinator/release/release_plan.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "coordinator/release/digest.hpp"
#include "tests/release/test_plans.hpp"

namespace fabu::coordinator::release {
namespace {

using testing::FullPlan;
using testing::FullPlanJson;
using testing::kPackageId;
using testing::PlanError;

bool Has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(ReleasePlanParseTest, ReadsTheIssueExample) {
  ReleasePlan plan = FullPlan();
  EXPECT_EQ(plan.title, "C3M-VIDEO playback download");
  EXPECT_EQ(plan.product, "c3m-video");
  EXPECT_EQ(plan.version.ToString(), "V1.3.0.12");
  EXPECT_EQ(plan.category, "minor");
  EXPECT_EQ(plan.change_refs, std::vector<std::string>{"CHG-2026-0113"});
  EXPECT_EQ(plan.Section(PlanSection::kRollbackPlan), "r");
  EXPECT_EQ(plan.Section(PlanSection::kBaseline), "b");
  EXPECT_EQ(plan.packages, std::vector<std::string>{kPackageId});
  ASSERT_TRUE(plan.targets);
  EXPECT_EQ(plan.targets->ToString(), "app=c3m-video,env=production");
  EXPECT_EQ(plan.reviewers.size(), 2u);
  ASSERT_TRUE(plan.golive);
  EXPECT_EQ(plan.golive->waves.size(), 3u);
  EXPECT_TRUE(CheckSubmittable(plan));
}

// docs/plan.md's complete plan, with a real package id in place of its
// placeholder, is a plan that may be submitted: the page stays true.
TEST(ReleasePlanParseTest, TheCompletePlanOfDocsPlanMdIsSubmittable) {
  std::ifstream in(std::string(FABU_SOURCE_DIR) + "/docs/plan.md");
  ASSERT_TRUE(in) << "docs/plan.md";
  const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto begin = page.find("```yaml\n");
  ASSERT_NE(begin, std::string::npos);
  const auto end = page.find("```", begin + 8);
  ASSERT_NE(end, std::string::npos);
  std::string yaml = page.substr(begin + 8, end - begin - 8);
  const std::string placeholder = "<the id printed by fabu package upload>";
  const auto at = yaml.find(placeholder);
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, placeholder.size(), std::string(64, 'a'));
  auto plan = ParseReleasePlan(yaml);
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_TRUE(CheckSubmittable(*plan)) << CheckSubmittable(*plan).error().message();
  ASSERT_TRUE(plan->golive);
  EXPECT_EQ(plan->golive->waves.size(), 3u);
  EXPECT_EQ(plan->Section(PlanSection::kBaseline).substr(0, 9), "Debian 12");
}

TEST(ReleasePlanParseTest, ReadsYamlLikeJson) {
  const std::string yaml = R"(
title: C3M-VIDEO playback download
product: c3m-video
version: V1.3.0.12
category: minor
change_refs: [CHG-2026-0113]
plan:
  purpose: p
  scope: s
  participants: pa
  communication: c
  work_plan: w
  follow_up: f
  rollback_plan: r
  known_issues: k
  baseline: b
packages: [")" + kPackageId +
                           R"("]
targets: {selector: "app=c3m-video,env=production"}
reviewers: [wang.approver, li.ops-head]
golive:
  window: {start: "2026-12-01T01:00:00+08:00", end: "2026-12-01T05:00:00+08:00"}
  waves: [1, 25%, 100%]
  max_failures: 10%
  between_waves: 5m
  host_timeout: 15m
  auto_rollback: true
)";
  auto plan = ParseReleasePlan(yaml);
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_EQ(*plan, FullPlan());
  EXPECT_EQ(*ContentDigest(*plan), *ContentDigest(FullPlan()));
}

TEST(ReleasePlanParseTest, ADraftMayLackEverythingButItsIdentity) {
  auto plan = ParseReleasePlan(
      R"({"title": "t", "product": "p", "version": "V1.0.0.0", "category": "patch"})");
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_TRUE(plan->packages.empty());
  EXPECT_FALSE(plan->targets);
  EXPECT_FALSE(plan->golive);
}

TEST(ReleasePlanParseTest, WrongTypeNamesTheFieldPath) {
  std::string doc = FullPlanJson();
  doc.replace(doc.find(R"("rollback_plan": "r")"), 20, R"("rollback_plan": 7)");
  EXPECT_EQ(PlanError(doc), "plan.rollback_plan: must be a string, got a number");
  EXPECT_EQ(PlanError(R"({"title": ["x"]})"), "title: must be a string, got a list");
  EXPECT_EQ(PlanError(R"([1])"), "document: must be an object, got a list");
}

// targets.late_joiners (docs/plan.md): a boolean, false when absent; in the
// content digest only when true, so the plans written before it keep theirs.
TEST(ReleasePlanParseTest, LateJoinersIsABooleanOfTheTargets) {
  const std::string doc = FullPlanJson();
  const std::string targets = R"("targets": {"selector": )";
  ASSERT_TRUE(Has(doc, targets)) << doc;
  auto with = [&](const std::string& value) {
    std::string changed = doc;
    changed.replace(changed.find(targets), targets.size(),
                    R"("targets": {"late_joiners": )" + value + R"(, "selector": )");
    return changed;
  };
  EXPECT_EQ(PlanError(with(R"("yes")")),
            "targets.late_joiners: must be true or false, got a string");
  EXPECT_EQ(PlanError(with("1")), "targets.late_joiners: must be true or false, got a number");
  auto plain = ParseReleasePlan(doc);
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_FALSE(plain->late_joiners);
  auto late = ParseReleasePlan(with("true"));
  ASSERT_TRUE(late) << late.error().message();
  EXPECT_TRUE(late->late_joiners);
  EXPECT_EQ(ReleaseContentToJson(*late)["targets"]["late_joiners"], true);
  EXPECT_FALSE(ReleaseContentToJson(*plain)["targets"].contains("late_joiners"));
  EXPECT_NE(*ContentDigest(*late), *ContentDigest(*plain));
  auto off = ParseReleasePlan(with("false"));
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_EQ(*ContentDigest(*off), *ContentDigest(*plain));
  auto again = ParseReleasePlan(ReleasePlanToJson(*late).dump());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, *late);
}

TEST(ReleasePlanParseTest, UnknownFieldsAreRefusedWithTheirPath) {
  std::string doc = FullPlanJson();
  doc.insert(1, R"("foo": 1, )");
  EXPECT_TRUE(Has(PlanError(doc), "unknown field \"foo\"")) << PlanError(doc);
  std::string nested = FullPlanJson();
  nested.replace(nested.find(R"("purpose")"), 9, R"("purpse")");
  EXPECT_TRUE(Has(PlanError(nested), "plan: unknown field \"purpse\"")) << PlanError(nested);
  std::string golive = FullPlanJson();
  golive.replace(golive.find(R"("auto_rollback")"), 15, R"("autorollback")");
  EXPECT_TRUE(Has(PlanError(golive), "golive: unknown field \"autorollback\""));
}

TEST(ReleasePlanParseTest, YamlErrorsNameTheFieldPathToo) {
  EXPECT_EQ(PlanError("title: t\nproduct: p\nversion: V1.0.0.0\ncategory: patch\n"
                      "plan:\n  rollback_plan: [a]\n"),
            "plan.rollback_plan: must be a string, got a list");
  EXPECT_EQ(PlanError("title: t\nproduct: p\nversion: V1.0.0.0\ncategory: patch\n"
                      "golive:\n  waves: [1]\n"),
            "golive.window: is required ({\"start\": ..., \"end\": ...})");
  EXPECT_TRUE(Has(PlanError("title: [unclosed\n"), "malformed YAML at line"));
}

TEST(ReleasePlanParseTest, MalformedJsonSaysWhere) {
  EXPECT_TRUE(Has(PlanError(R"({"title": )"), "malformed JSON: parse error at line 1"))
      << PlanError(R"({"title": )");
}

TEST(ReleasePlanParseTest, DuplicateFieldsAreRefused) {
  EXPECT_TRUE(Has(PlanError(R"({"title": "a", "title": "b"})"), "\"title\" appears twice"));
  EXPECT_TRUE(Has(PlanError("title: a\ntitle: b\n"), "\"title\" appears twice"));
}

TEST(ReleasePlanParseTest, IdentityFieldsAreRequired) {
  EXPECT_EQ(PlanError(R"({"product": "p", "version": "V1.0.0.0", "category": "patch"})"),
            "title: is required (a one-line title)");
  EXPECT_TRUE(Has(PlanError(R"({"title": "t", "product": "p", "category": "patch"})"),
                  "version: is required"));
}

TEST(ReleasePlanParseTest, VersionFollowsTheVersionPolicyFormat) {
  EXPECT_TRUE(Has(PlanError(R"({"title": "t", "product": "p", "version": "1.0.0.0",
                                "category": "patch"})"),
                  "version: version \"1.0.0.0\" must start with 'V'"));
}

TEST(ReleasePlanParseTest, CategoryComesFromTheConfiguredList) {
  const std::string doc =
      R"({"title": "t", "product": "p", "version": "V1.0.0.0", "category": "hotfix"})";
  EXPECT_EQ(PlanError(doc),
            "category: \"hotfix\" is not a release category (one of major, minor, patch, "
            "emergency)");
  PlanParseOptions options;
  options.categories = {"hotfix"};
  EXPECT_EQ(PlanError(doc, options), "parsed");
}

TEST(ReleasePlanParseTest, PackageIdsAreSha256Hex) {
  std::string doc = FullPlanJson();
  doc.replace(doc.find(kPackageId), 64, "ABC");
  EXPECT_TRUE(Has(PlanError(doc), "packages[0]: \"ABC\" is not a package id")) << PlanError(doc);
  std::string twice = FullPlanJson();
  twice.replace(twice.find(kPackageId), 64, kPackageId + "\", \"" + kPackageId);
  EXPECT_TRUE(Has(PlanError(twice), "packages[1]: \"" + kPackageId + "\" is listed twice"));
}

TEST(ReleasePlanParseTest, TargetSelectorSyntaxIsChecked) {
  EXPECT_TRUE(TargetSelector::Parse("env=production,site=gz"));
  EXPECT_FALSE(TargetSelector::Parse("env"));
  EXPECT_FALSE(TargetSelector::Parse("env=,site=gz"));
  EXPECT_FALSE(TargetSelector::Parse("env=a,env=b"));
  EXPECT_FALSE(TargetSelector::Parse("env=a b"));
  EXPECT_FALSE(TargetSelector::Parse("Env=a"));
  EXPECT_FALSE(TargetSelector::Parse("env=a,"));
  std::string doc = FullPlanJson();
  doc.replace(doc.find("app=c3m-video,env=production"), 28, "app c3m");
  EXPECT_TRUE(Has(PlanError(doc), "targets.selector: selector \"app c3m\"")) << PlanError(doc);
}

TEST(ReleasePlanParseTest, ChangeRefsMustBeNonEmptyStrings) {
  std::string doc = FullPlanJson();
  doc.replace(doc.find(R"(["CHG-2026-0113"])"), 17, R"(["CHG-1", ""])");
  EXPECT_EQ(PlanError(doc), "change_refs[1]: must not be empty");
}

TEST(CheckSubmittableTest, ListsEverythingMissing) {
  auto plan = ParseReleasePlan(
      R"({"title": "t", "product": "p", "version": "V1.0.0.0", "category": "patch",
          "plan": {"purpose": "why", "scope": "   "}})");
  ASSERT_TRUE(plan);
  auto check = CheckSubmittable(*plan);
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().code(), ErrorCode::kFailedPrecondition);
  const std::string& message = check.error().message();
  EXPECT_FALSE(Has(message, "plan.purpose"));
  for (std::string_view key :
       {"plan.scope", "plan.participants", "plan.communication", "plan.work_plan", "plan.follow_up",
        "plan.rollback_plan", "plan.known_issues", "plan.baseline"}) {
    EXPECT_TRUE(Has(message, key)) << key << " in " << message;
  }
  EXPECT_TRUE(Has(message, "发布失败情况下的退回方案"));
  EXPECT_TRUE(Has(message, "packages: at least one package"));
  EXPECT_TRUE(Has(message, "targets.selector"));
  EXPECT_TRUE(Has(message, "change_refs: at least one"));
  EXPECT_TRUE(Has(message, "reviewers: at least one"));
}

TEST(ReleasePlanJsonTest, CanonicalJsonRoundTrips) {
  ReleasePlan plan = FullPlan();
  const std::string text = ReleasePlanToJson(plan).dump();
  auto again = ParseReleasePlan(text);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, plan);
  EXPECT_EQ(ReleasePlanToJson(*again).dump(), text);
}

TEST(ReleasePlanJsonTest, ContentDigestIgnoresGoLiveAndKeyOrder) {
  ReleasePlan plan = FullPlan();
  auto digest = ContentDigest(plan);
  ASSERT_TRUE(digest);
  EXPECT_TRUE(IsSha256Hex(*digest));
  ReleasePlan without_golive = plan;
  without_golive.golive.reset();
  EXPECT_EQ(*ContentDigest(without_golive), *digest);
  ReleasePlan other = plan;
  other.packages[0] = std::string(64, 'b');
  EXPECT_NE(*ContentDigest(other), *digest);
  other = plan;
  other.Section(PlanSection::kScope) = "wider";
  EXPECT_NE(*ContentDigest(other), *digest);
}

TEST(DigestTest, Sha256OfAbcIsTheKnownVector) {
  EXPECT_EQ(*Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace fabu::coordinator::release
