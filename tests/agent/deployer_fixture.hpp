// A Deployer in process over a temp directory, shared by the deployer's
// tests (deployer_test.cpp, journal_faults_test.cpp): an apps root, a
// journal, a signing key its trust store holds, a recording event sink, real
// hook processes and a fake clock. Settings: no fsync (durability is tested
// through the fault-injecting file system), hooks and health checks time out
// after 30 s; a test changes `settings_` before MakeDeployer.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "agent/deploy/deployer.hpp"
#include "agent/journal/journal.hpp"
#include "packaging/keys.hpp"
#include "tests/agent/agent_fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {

class DeployerFixture : public ::testing::Test {
 protected:
  void SetUp() override;

  // Opens the journal in <dir>/data again, as an agent that restarts does
  // (the previous one is closed first: it holds the lock).
  void OpenJournal();

  Deployer MakeDeployer();

  // The version `current` points at, of the test's app.
  std::optional<protocol::Version> Current();

  fabu::testing::TempDir dir_;
  std::filesystem::path apps_;
  std::unique_ptr<packaging::SigningKey> key_;
  packaging::TrustStore trust_;
  HostFacts host_ = HostFacts::Detect();
  std::unique_ptr<Journal> journal_;
  RecordingSink sink_;
  ProcessHookRunner hooks_;
  FakeClock clock_;
  DeploymentSettings settings_;
};

}  // namespace fabu::agent::testing
