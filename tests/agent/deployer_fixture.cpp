#include "tests/agent/deployer_fixture.hpp"

#include "agent/install/install_layout.hpp"

namespace fabu::agent::testing {

void DeployerFixture::SetUp() {
  key_ = std::make_unique<packaging::SigningKey>(*packaging::SigningKey::Generate());
  trust_.Add(key_->public_key());
  apps_ = dir_.path() / "apps";
  std::filesystem::create_directories(apps_);
  settings_.apps_root = apps_;
  settings_.hook_timeout = std::chrono::seconds(30);
  settings_.health_check_timeout = std::chrono::seconds(30);
  settings_.durable = false;
  OpenJournal();
}

void DeployerFixture::OpenJournal() {
  journal_.reset();  // its lock first
  auto journal = Journal::Open(dir_.path() / "data");
  ASSERT_TRUE(journal) << journal.error().message();
  journal_ = std::make_unique<Journal>(std::move(*journal));
}

Deployer DeployerFixture::MakeDeployer() {
  return Deployer(settings_, trust_, host_, *journal_, sink_, hooks_, clock_);
}

std::optional<protocol::Version> DeployerFixture::Current() {
  auto current = InstallLayout(apps_).CurrentVersion("c3m-video");
  EXPECT_TRUE(current);
  return current ? *current : std::nullopt;
}

}  // namespace fabu::agent::testing
