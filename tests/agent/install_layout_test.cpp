// The apps-root layout: atomic `current`, pruning, inventory.
#include "agent/install/install_layout.hpp"

#include <gtest/gtest.h>

#include "tests/agent/agent_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;
using protocol::Version;

Version V(const std::string& text) { return Version::Parse(text).value(); }

class InstallLayoutTest : public ::testing::Test {
 protected:
  void AddRelease(const std::string& version) {
    WriteFile(layout_.ReleaseDir("app", V(version)) / "bin", version);
    WriteFile(layout_.ManifestPath("app", V(version)), "{}");
  }

  TempDir dir_;
  InstallLayout layout_{dir_.path()};
};

TEST_F(InstallLayoutTest, CurrentIsARelativeLinkSwitchedWithoutLeftovers) {
  ASSERT_TRUE(layout_.Prepare("app"));
  AddRelease("V1.0.0.0");
  AddRelease("V1.1.0.0");
  EXPECT_EQ(layout_.CurrentVersion("app").value(), std::nullopt);
  ASSERT_TRUE(layout_.SwitchCurrent("app", V("V1.0.0.0")));
  ASSERT_TRUE(layout_.SwitchCurrent("app", V("V1.1.0.0")));
  EXPECT_EQ(fs::read_symlink(layout_.CurrentLink("app")), "releases/V1.1.0.0");
  EXPECT_EQ(layout_.CurrentVersion("app").value(), V("V1.1.0.0"));
  EXPECT_TRUE(EntriesStartingWith(layout_.AppDir("app"), "current.tmp-").empty());
}

TEST_F(InstallLayoutTest, SwitchingToAMissingReleaseIsRefused) {
  ASSERT_TRUE(layout_.Prepare("app"));
  auto ok = layout_.SwitchCurrent("app", V("V2.0.0.0"));
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.error().message().find("V2.0.0.0"), std::string::npos);
  EXPECT_FALSE(fs::exists(layout_.CurrentLink("app")));
}

TEST_F(InstallLayoutTest, PruneKeepsTheNewestAndAlwaysCurrentAndPrevious) {
  for (int i = 1; i <= 6; ++i) AddRelease("V1." + std::to_string(i) + ".0.0");
  ASSERT_TRUE(layout_.SwitchCurrent("app", V("V1.2.0.0")));
  auto removed = layout_.Prune("app", 3, V("V1.1.0.0"));
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, std::vector<Version>{V("V1.3.0.0")});
  EXPECT_EQ(layout_.Releases("app").value(),
            (std::vector<Version>{V("V1.1.0.0"), V("V1.2.0.0"), V("V1.4.0.0"), V("V1.5.0.0"),
                                  V("V1.6.0.0")}));
  EXPECT_FALSE(fs::exists(layout_.ManifestPath("app", V("V1.3.0.0"))));
  EXPECT_TRUE(EntriesStartingWith(layout_.AppDir("app"), ".trash-").empty());
}

TEST_F(InstallLayoutTest, TheCurrentReleaseIsNeverRemoved) {
  AddRelease("V1.0.0.0");
  ASSERT_TRUE(layout_.SwitchCurrent("app", V("V1.0.0.0")));
  EXPECT_FALSE(layout_.RemoveRelease("app", V("V1.0.0.0")));
  EXPECT_TRUE(fs::exists(layout_.ReleaseDir("app", V("V1.0.0.0"))));
}

TEST_F(InstallLayoutTest, InventoryListsEachAppWithItsCurrentVersion) {
  AddRelease("V1.0.0.0");
  AddRelease("V1.1.0.0");
  ASSERT_TRUE(layout_.SwitchCurrent("app", V("V1.1.0.0")));
  WriteFile(dir_.path() / "not-an-app", "");
  auto apps = layout_.Inventory();
  ASSERT_TRUE(apps) << apps.error().message();
  ASSERT_EQ(apps->size(), 1u);
  EXPECT_EQ((*apps)[0].name, "app");
  EXPECT_EQ((*apps)[0].current, V("V1.1.0.0"));
  EXPECT_EQ((*apps)[0].releases, (std::vector<Version>{V("V1.0.0.0"), V("V1.1.0.0")}));
}

TEST_F(InstallLayoutTest, ACurrentTheAgentDidNotMakeIsRefusedWithItsPath) {
  WriteFile(layout_.CurrentLink("app"), "a plain file");
  auto current = layout_.CurrentVersion("app");
  ASSERT_FALSE(current);
  EXPECT_NE(current.error().message().find(layout_.CurrentLink("app").string()), std::string::npos);
}

TEST_F(InstallLayoutTest, LeftoversAreRemoved) {
  AddRelease("V1.0.0.0");
  WriteFile(layout_.StagingDir("app", V("V1.1.0.0")) / "x", "");
  WriteFile(layout_.AppDir("app") / "..staging-V1.1.0.0.fabu-staging-abc" / "x", "");
  WriteFile(layout_.AppDir("app") / "current.tmp-123", "");
  ASSERT_TRUE(layout_.RemoveLeftovers("app"));
  EXPECT_TRUE(EntriesStartingWith(layout_.AppDir("app"), ".").empty());
  EXPECT_TRUE(EntriesStartingWith(layout_.AppDir("app"), "current").empty());
  EXPECT_TRUE(fs::exists(layout_.ReleaseDir("app", V("V1.0.0.0"))));
}

}  // namespace
}  // namespace fabu::agent::testing
