#include "protocol/version.hpp"

#include <gtest/gtest.h>

namespace fabu::protocol {
namespace {

Version V(std::string_view text) {
  auto v = Version::Parse(text);
  EXPECT_TRUE(v.has_value()) << text << ": " << (v ? "" : v.error().message());
  return v.value_or(Version{});
}

std::string Next(std::string_view from, VersionChange change) {
  auto next = NextVersion(V(from), change);
  return next ? next->ToString() : "error: " + next.error().message();
}

std::string ParseError(std::string_view text) {
  auto v = Version::Parse(text);
  return v ? "parsed" : v.error().message();
}

TEST(VersionParseTest, ReadsFourDecimalParts) {
  auto v = Version::Parse("V1.3.0.12");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->major, 1u);
  EXPECT_EQ(v->feature, 3u);
  EXPECT_EQ(v->spec, 0u);
  EXPECT_EQ(v->build, 12u);
  EXPECT_EQ(v->ToString(), "V1.3.0.12");
}

TEST(VersionParseTest, AcceptsTheLimits) {
  EXPECT_EQ(V("V99.99.99.0").ToString(), "V99.99.99.0");
  EXPECT_EQ(V("V0.0.0.0").ToString(), "V0.0.0.0");
  EXPECT_EQ(V("V1.0.0.9223372036854775807").build, 9223372036854775807ull);
}

TEST(VersionParseTest, NeedsFourParts) {
  EXPECT_NE(ParseError("V1.2.3").find("four parts needed"), std::string::npos);
  EXPECT_NE(ParseError("V1.2.3.4.5").find("four parts needed"), std::string::npos);
  EXPECT_NE(ParseError("V1").find("four parts needed"), std::string::npos);
}

TEST(VersionParseTest, NeedsTheLeadingV) {
  EXPECT_NE(ParseError("1.2.3.4").find("must start with 'V'"), std::string::npos);
  EXPECT_NE(ParseError("v1.2.3.4").find("must start with 'V'"), std::string::npos);
  EXPECT_NE(ParseError("").find("empty"), std::string::npos);
}

TEST(VersionParseTest, NamesThePartOutOfRange) {
  EXPECT_NE(ParseError("V100.0.0.0").find("major number must be 0..99"), std::string::npos);
  EXPECT_NE(ParseError("V1.100.0.0").find("feature number must be 0..99"), std::string::npos);
  EXPECT_NE(ParseError("V1.0.100.0").find("specification number must be 0..99"), std::string::npos);
  EXPECT_NE(ParseError("V1.0.0.99999999999999999999").find("build number"), std::string::npos);
}

TEST(VersionParseTest, RefusesLeadingZerosSignsAndJunk) {
  EXPECT_NE(ParseError("V01.0.0.0").find("leading zero"), std::string::npos);
  EXPECT_NE(ParseError("V1.0.0.00").find("leading zero"), std::string::npos);
  EXPECT_NE(ParseError("V1.-1.0.0").find("decimal digits"), std::string::npos);
  EXPECT_NE(ParseError("V1.+1.0.0").find("decimal digits"), std::string::npos);
  EXPECT_NE(ParseError("V1. 1.0.0").find("decimal digits"), std::string::npos);
  EXPECT_NE(ParseError("V1..0.0").find("feature number is empty"), std::string::npos);
  EXPECT_NE(ParseError("V1.0.0.").find("build number is empty"), std::string::npos);
}

TEST(VersionPolicyTest, MajorBumpResetsEverythingBelow) {
  EXPECT_EQ(Next("V1.3.7.12", VersionChange::kMajor), "V2.0.0.0");
}

TEST(VersionPolicyTest, MajorCannotPassNinetyNine) {
  EXPECT_NE(Next("V99.3.7.12", VersionChange::kMajor).find("cannot rise past 99"),
            std::string::npos);
}

TEST(VersionPolicyTest, FeatureBumpResetsSpec) {
  EXPECT_EQ(Next("V1.3.7.12", VersionChange::kFeature), "V1.4.0.0");
}

TEST(VersionPolicyTest, FeaturePastNinetyNineCarriesIntoMajor) {
  EXPECT_EQ(Next("V1.99.7.12", VersionChange::kFeature), "V2.0.0.0");
  EXPECT_NE(Next("V99.99.0.0", VersionChange::kFeature).find("past 99"), std::string::npos);
}

TEST(VersionPolicyTest, SpecBumpResetsBuild) {
  EXPECT_EQ(Next("V1.3.7.12", VersionChange::kSpec), "V1.3.8.0");
}

TEST(VersionPolicyTest, SpecPastNinetyNineCarriesIntoFeatureAndMajor) {
  EXPECT_EQ(Next("V1.3.99.12", VersionChange::kSpec), "V1.4.0.0");
  EXPECT_EQ(Next("V1.99.99.12", VersionChange::kSpec), "V2.0.0.0");
  EXPECT_NE(Next("V99.99.99.1", VersionChange::kSpec).find("past 99"), std::string::npos);
}

TEST(VersionPolicyTest, BuildBumpKeepsTheRest) {
  EXPECT_EQ(Next("V1.3.7.12", VersionChange::kBuild), "V1.3.7.13");
  EXPECT_EQ(Next("V99.99.99.0", VersionChange::kBuild), "V99.99.99.1");
}

TEST(VersionPolicyTest, ParsesChangeNames) {
  EXPECT_EQ(ParseVersionChange("major").value(), VersionChange::kMajor);
  EXPECT_EQ(ParseVersionChange("feature").value(), VersionChange::kFeature);
  EXPECT_EQ(ParseVersionChange("spec").value(), VersionChange::kSpec);
  EXPECT_EQ(ParseVersionChange("build").value(), VersionChange::kBuild);
  auto bad = ParseVersionChange("minor");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("major, feature, spec or build"), std::string::npos);
}

std::string Check(std::string_view prev, std::string_view next) {
  auto ok = CheckSuccession(V(prev), V(next));
  return ok ? "ok" : ok.error().message();
}

TEST(VersionSuccessionTest, NextMustBeGreater) {
  EXPECT_NE(Check("V1.3.0.12", "V1.3.0.12").find("must be greater"), std::string::npos);
  EXPECT_NE(Check("V1.3.0.12", "V1.2.9.99").find("must be greater"), std::string::npos);
  EXPECT_NE(Check("V2.0.0.0", "V1.99.99.99").find("must be greater"), std::string::npos);
}

TEST(VersionSuccessionTest, BuildMustRiseWhenNothingElseDoes) {
  EXPECT_EQ(Check("V1.3.0.12", "V1.3.0.13"), "ok");
  EXPECT_EQ(Check("V1.3.0.12", "V1.3.0.40"), "ok");
  EXPECT_NE(Check("V1.3.0.12", "V1.3.0.11").find("must be greater"), std::string::npos);
}

TEST(VersionSuccessionTest, MajorRiseNeedsZeroFeatureAndSpec) {
  EXPECT_EQ(Check("V1.3.2.12", "V2.0.0.0"), "ok");
  EXPECT_EQ(Check("V1.3.2.12", "V2.0.0.7"), "ok");  // builds between releases
  EXPECT_NE(Check("V1.3.2.12", "V2.1.0.0").find("major number rises"), std::string::npos);
  EXPECT_NE(Check("V1.3.2.12", "V2.0.1.0").find("major number rises"), std::string::npos);
}

TEST(VersionSuccessionTest, FeatureRiseNeedsZeroSpec) {
  EXPECT_EQ(Check("V1.3.2.12", "V1.4.0.0"), "ok");
  EXPECT_EQ(Check("V1.3.2.12", "V1.4.0.3"), "ok");
  EXPECT_NE(Check("V1.3.2.12", "V1.4.1.0").find("feature number rises"), std::string::npos);
}

TEST(VersionSuccessionTest, SpecRiseTakesAnyBuild) {
  EXPECT_EQ(Check("V1.3.2.12", "V1.3.3.0"), "ok");
  EXPECT_EQ(Check("V1.3.2.12", "V1.3.3.5"), "ok");
  EXPECT_EQ(Check("V1.3.2.12", "V1.3.5.0"), "ok");
}

}  // namespace
}  // namespace fabu::protocol
