// `fabu version` as a release manager runs it.
#include <gtest/gtest.h>

#include "tests/support/run_command.hpp"

namespace fabu::testing {
namespace {

TEST(VersionCliTest, NextPrintsTheFollowingVersion) {
  auto r = Fabu({"version", "next", "V1.3.0.12", "--change", "feature"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "V1.4.0.0\n");
  r = Fabu({"version", "next", "V1.3.99.12", "--change", "spec"});
  EXPECT_EQ(r.out, "V1.4.0.0\n");
  r = Fabu({"version", "next", "V1.3.0.12", "--change", "build"});
  EXPECT_EQ(r.out, "V1.3.0.13\n");
  r = Fabu({"version", "next", "V1.3.0.12", "--change", "major"});
  EXPECT_EQ(r.out, "V2.0.0.0\n");
}

TEST(VersionCliTest, NextPastNinetyNineFails) {
  auto r = Fabu({"version", "next", "V99.0.0.0", "--change", "major"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("past 99"), std::string::npos) << r.err;
}

TEST(VersionCliTest, MalformedVersionIsNamed) {
  auto r = Fabu({"version", "next", "V1.2.3", "--change", "build"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("four parts needed"), std::string::npos) << r.err;
  r = Fabu({"version", "check", "V1.100.0.0", "V1.2.0.0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("PREV"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("feature number must be 0..99"), std::string::npos) << r.err;
  r = Fabu({"version", "next", "V1.2.3.4", "--change", "minor"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown change \"minor\""), std::string::npos) << r.err;
}

TEST(VersionCliTest, CheckExitsZeroForALegalSuccession) {
  auto r = Fabu({"version", "check", "V1.3.0.12", "V1.4.0.0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST(VersionCliTest, CheckNamesTheBrokenRule) {
  auto r = Fabu({"version", "check", "V1.3.0.12", "V1.3.0.12"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("must be greater"), std::string::npos) << r.err;
  r = Fabu({"version", "check", "V1.3.0.12", "V2.1.0.0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("major number rises"), std::string::npos) << r.err;
  r = Fabu({"version", "check", "V1.3.2.12", "V1.4.2.0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("feature number rises"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fabu::testing
