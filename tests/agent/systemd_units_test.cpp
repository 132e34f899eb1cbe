// The systemd units shipped in packaging/systemd pass `systemd-analyze
// verify` and say what the agent and coordinator need (Type=notify, watchdog,
// restart, hardening with the data dir and apps root writable).
//
// systemd-analyze also checks that ExecStart's binary exists, so the test
// verifies copies whose /usr/bin paths point at the built fabu-agent and at
// an executable stand-in for fabu-coordinator; the units are otherwise as shipped.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/agent/agent_fixture.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::ReadFile;
using fabu::testing::RunCommand;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;

const fs::path kUnits = fs::path(FABU_SOURCE_DIR) / "packaging/systemd";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

TEST(SystemdUnitsTest, UnitsSayWhatTheDaemonsNeed) {
  const std::string agent = ReadFile(kUnits / "fabu-agent.service");
  for (const std::string line :
       {"Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes",
        "ProtectSystem=strict", "ReadWritePaths=/var/lib/fabu-agent -/opt/fabu", "PrivateTmp=yes",
        "ProtectHome=yes",
        "ExecStart=/usr/bin/fabu-agent run --data /var/lib/fabu-agent --log-format journal"}) {
    EXPECT_NE(agent.find(line), std::string::npos) << "fabu-agent.service lacks " << line;
  }
  // An agent whose credential the coordinator refused exits 77 (docs/agent.md);
  // restarting it cannot help.
  EXPECT_NE(agent.find("\nRestartPreventExitStatus=77\n"), std::string::npos)
      << "fabu-agent.service restarts an agent whose host was removed";
  const std::string coordinator = ReadFile(kUnits / "fabu-coordinator.service");
  for (const std::string line :
       {"Type=notify", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/fabu-coordinator", "PrivateTmp=yes", "ProtectHome=yes",
        "ExecStart=/usr/bin/fabu-coordinator serve --data /var/lib/fabu-coordinator --log-format "
        "journal"}) {
    EXPECT_NE(coordinator.find(line), std::string::npos)
        << "fabu-coordinator.service lacks " << line;
  }
}

TEST(SystemdUnitsTest, PassSystemdAnalyzeVerify) {
  if (RunCommand({"sh", "-c", "command -v systemd-analyze"}).exit_code != 0) {
    FAIL() << "systemd-analyze is not installed (Debian's systemd; scripts/bootstrap installs "
              "it): the units cannot be verified";
  }
  TempDir dir;
  const fs::path stand_in = dir / "bin/fabu-coordinator";
  WriteFile(stand_in, "#!/bin/sh\nexit 0\n");
  fs::permissions(stand_in, fs::perms(0755));
  std::vector<std::string> argv = {"systemd-analyze", "verify"};
  for (const std::string name : {"fabu-agent.service", "fabu-coordinator.service"}) {
    std::string text = ReadFile(kUnits / name);
    text = Replace(text, "/usr/bin/fabu-agent", AgentBinary());
    text = Replace(text, "/usr/bin/fabu-coordinator", stand_in.string());
    WriteFile(dir / "units" / name, text);
    argv.push_back((dir / "units" / name).string());
  }
  auto r = RunCommand(argv);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // Warnings do not fail verify; any line naming our units is a finding.
  EXPECT_EQ(r.err.find("fabu-"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("fabu-"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace fabu::agent::testing
