// A coordinator backed up while a rollout is running and users are being
// added, lost, and restored from that backup into a new data directory on
// the same port (coordinator/daemon/backup.hpp; docs/coordinator.md,
// "Backups"): the restored coordinator holds every release, package, host
// and record, its audit trail verifies and is the original's up to the
// backup, and the enrolled agents, with the CA and credentials they had,
// finish the rollout against it.
#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/fleet.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/test_store.hpp"

namespace fabu::e2e {
namespace {

using fabu::testing::ReadFile;
using fabu::testing::RunCommand;
using fabu::testing::WriteFile;

class BackupE2eTest : public Fleet {
 protected:
  json List(const std::vector<std::string>& args) {
    auto r = As(admin_, args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }
  // Name and labels of each host (last seen moves on).
  json Hosts() {
    json hosts = json::array();
    for (const json& h : HostsList()) {
      hosts.push_back({{"name", h.value("name", "")}, {"labels", h.value("labels", json())}});
    }
    return hosts;
  }
};

// Given a rollout held inside every agent's activate hook and users being
// added meanwhile, a backup taken then and restored into a new directory
// should give a coordinator that has it all and that the agents finish the
// rollout with.
TEST_F(BackupE2eTest, ACoordinatorRestoredFromABackupTakenMidRolloutFinishesIt) {
  FABU_SQLITE_ONLY();  // backup copies the SQLite store (PostgreSQL's is pg_dump's)
  ASSERT_NO_FATAL_FAILURE(AddAgents(2));
  const Package v1 = BuildAndUpload(kV1);
  HoldEveryAgent();
  const std::string id = Release(v1);
  ASSERT_TRUE(AllHeld()) << AllAgentLogs();

  const json audit_before = List({"audit", "list", "--json"});
  ASSERT_TRUE(audit_before.is_array() && !audit_before.empty());

  // The store keeps being written while the backup runs (bounded: 40 users
  // or 30 s).
  const fs::path backup = dir_ / "coordinator.backup";
  std::atomic<bool> stop{false};
  std::atomic<int> added{0};
  std::thread writer([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (int i = 0; i < 40 && !stop && std::chrono::steady_clock::now() < deadline; ++i) {
      auto r = As(admin_, {"user", "add", "busy-" + std::to_string(i), "--role", "viewer"});
      if (r.exit_code != 0) break;
      ++added;
    }
  });
  WaitFor([&] { return added >= 2; }, std::chrono::seconds(20));
  auto made = RunCommand({fabu::testing::CoordinatorBinary(), "backup", "--data",
                          CoordinatorDir().string(), "--out", backup.string()});
  stop = true;
  writer.join();
  ASSERT_EQ(made.exit_code, 0) << made.err;

  const json releases = List({"release", "list", "--json"});
  const json packages = List({"package", "list", "--json"});
  const json records = List({"cmdb", "history", "--json"});
  const json hosts = Hosts();
  const json audit = List({"audit", "list", "--json"});
  ASSERT_TRUE(releases.is_array() && !releases.empty()) << releases.dump(2);
  ASSERT_EQ(hosts.size(), agents_.size()) << hosts.dump(2);

  // The coordinator's host is lost; its data directory comes back from the
  // backup, on the port the agents know.
  const int port = Port();
  EXPECT_EQ(StopCoordinator(), 0) << CoordinatorLog();
  fs::rename(CoordinatorDir(), dir_ / "lost-coordinator");
  auto restored = RunCommand({fabu::testing::CoordinatorBinary(), "restore", "--from",
                              backup.string(), "--data", CoordinatorDir().string()});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(port));

  auto verify = As(admin_, {"audit", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(List({"release", "list", "--json"}), releases);
  EXPECT_EQ(List({"package", "list", "--json"}), packages);
  EXPECT_EQ(List({"cmdb", "history", "--json"}), records);
  EXPECT_EQ(Hosts(), hosts);
  // The trail up to the backup, entry for entry (the restored daemon's
  // own entries follow): a snapshot, not a mix.
  const json trail = List({"audit", "list", "--json"});
  ASSERT_TRUE(trail.is_array() && audit.is_array());
  std::size_t same = 0;
  while (same < trail.size() && same < audit.size() && trail[same] == audit[same]) ++same;
  EXPECT_GE(same, audit_before.size()) << trail.dump(2);

  // The agents, still inside their hook, go on against the restored
  // coordinator with their credentials and pinned CA.
  for (const auto& agent : agents_) WriteFile(agent.apps() / "GO", "");
  ASSERT_EQ(WaitForFinal(id), "deployed")
      << HostsOf(id).dump(2) << AllAgentLogs() << CoordinatorLog();
  const json final_hosts = HostsOf(id);
  for (const auto& agent : agents_) {
    EXPECT_EQ(Current(agent), fs::path("releases") / kV1) << agent.name;
  }
  EXPECT_EQ(final_hosts.size(), agents_.size()) << final_hosts.dump(2);
  EXPECT_FALSE(ReadFile(agents_[0].log()).empty());
}

}  // namespace
}  // namespace fabu::e2e
