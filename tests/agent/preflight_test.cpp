// The agent's answer to a pre-flight question (agent/run/preflight.hpp), on
// a real apps root: ready when every check holds; each failing check named;
// a question from a hostile coordinator whose app is a path touches nothing.
#include "agent/run/preflight.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "packaging/keys.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent {
namespace {

namespace fs = std::filesystem;

class PreflightTest : public ::testing::Test {
 protected:
  PreflightTest() : key_(*packaging::SigningKey::Generate()) {
    trust_.Add(key_.public_key());
    context_.apps_root = dir_ / "apps";
    context_.downloads = dir_ / "data" / "downloads";
    context_.trust = &trust_;
    context_.host = HostFacts{"linux", "x86_64", {}};
    question_.id = "R-3#1";
    question_.release = "R-3";
    question_.app = "c3m-video";
    question_.version = "V1.0.0.2";
    question_.package_id = std::string(64, 'a');
    question_.package_size = 1024;
    question_.unpacked_size = 4096;
    question_.key_id = key_.public_key().key_id();
    question_.targets = {{"os", "linux"}};
  }
  std::string Reasons(const protocol::PreflightAnswer& a) {
    std::string out;
    for (const std::string& r : a.reasons) out += r + "; ";
    return out;
  }

  testing::TempDir dir_;
  packaging::SigningKey key_;
  packaging::TrustStore trust_;
  PreflightContext context_;
  protocol::PreflightRequest question_;
};

TEST_F(PreflightTest, AHostThatCouldInstallItIsReady) {
  const protocol::PreflightAnswer a = AnswerPreflight(question_, context_);
  EXPECT_TRUE(a.ready) << Reasons(a);
  EXPECT_EQ(a.id, "R-3#1");
  EXPECT_GT(a.free_bytes, 0u);
  EXPECT_EQ(a.installed_version, "");
  // Nothing is left behind by the writability probe.
  for (const auto& entry : fs::directory_iterator(context_.apps_root)) {
    ADD_FAILURE() << "left in the apps root: " << entry.path();
  }
}

TEST_F(PreflightTest, EachCheckThatFailsIsNamed) {
  question_.targets = {{"arch", "s390x"}};
  question_.key_id = "0123456789abcdef";
  question_.unpacked_size = std::uint64_t{1} << 60;  // more than any disk
  context_.in_flight = "R-2-1-web-1";
  fs::create_directories(context_.apps_root / "c3m-video" / "releases" / "V2.0.0.0");
  fs::create_symlink("releases/V2.0.0.0", context_.apps_root / "c3m-video" / "current");
  const protocol::PreflightAnswer a = AnswerPreflight(question_, context_);
  EXPECT_FALSE(a.ready);
  const std::string why = Reasons(a);
  EXPECT_NE(why.find("arch"), std::string::npos) << why;
  EXPECT_NE(why.find("key 0123456789abcdef, which this agent does not trust"), std::string::npos)
      << why;
  EXPECT_NE(why.find("not enough free space"), std::string::npos) << why;
  EXPECT_NE(why.find("deployment R-2-1-web-1 is in progress"), std::string::npos) << why;
  EXPECT_NE(why.find("V2.0.0.0 is installed: V1.0.0.2 would be a downgrade"), std::string::npos)
      << why;
  EXPECT_EQ(a.installed_version, "V2.0.0.0");
  EXPECT_EQ(a.reasons.size(), 5u) << why;
}

// A hostile coordinator's question whose app is a path: refused as a name,
// and no path outside the apps root is looked at or made.
TEST_F(PreflightTest, AnAppThatIsAPathIsRefusedAndTouchesNothing) {
  fs::create_directories(dir_ / "outside" / "releases" / "V9.0.0.0");
  fs::create_symlink("releases/V9.0.0.0", dir_ / "outside" / "current");
  question_.app = "../outside";
  const protocol::PreflightAnswer a = AnswerPreflight(question_, context_);
  EXPECT_FALSE(a.ready);
  EXPECT_NE(Reasons(a).find("app: "), std::string::npos) << Reasons(a);
  EXPECT_EQ(a.installed_version, "") << "the version of a path outside the apps root was read";
}

}  // namespace
}  // namespace fabu::agent
