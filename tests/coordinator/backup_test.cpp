// `fabu-coordinator backup` and `restore` (coordinator/daemon/backup.hpp;
// docs/coordinator.md, "Backups"), run as the real binary: a backup taken
// while the daemon runs and users are being added restores into a new
// directory that starts, passes `fabu audit verify` and holds a prefix of
// the users (one consistent snapshot); a damaged, truncated or partial
// backup and an existing installation are refused, each with its message,
// before the data directory is touched.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/coordinator_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store.hpp"

namespace fabu::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

mode_t ModeOf(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

CommandResult Coordinator(const std::vector<std::string>& args) {
  std::vector<std::string> argv{CoordinatorBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

// Entries of `dir` whose names start with `prefix` (leftovers of a restore).
std::vector<std::string> Leftovers(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix)) names.push_back(name);
  }
  return names;
}

// Copies the tar `from` to `to` with libarchive, leaving out the member
// `skip`: a backup missing one file, every other byte as written.
void CopyArchiveWithout(const fs::path& from, const fs::path& to, const std::string& skip) {
  archive* in = archive_read_new();
  archive_read_support_format_tar(in);
  ASSERT_EQ(archive_read_open_filename(in, from.c_str(), 10240), ARCHIVE_OK);
  archive* out = archive_write_new();
  archive_write_set_format_pax_restricted(out);
  ASSERT_EQ(archive_write_open_filename(out, to.c_str()), ARCHIVE_OK);
  archive_entry* entry = nullptr;
  std::vector<char> buffer(1 << 16);
  while (archive_read_next_header(in, &entry) == ARCHIVE_OK) {
    if (skip == archive_entry_pathname(entry)) continue;
    ASSERT_EQ(archive_write_header(out, entry), ARCHIVE_OK);
    la_ssize_t n = 0;
    while ((n = archive_read_data(in, buffer.data(), buffer.size())) > 0) {
      archive_write_data(out, buffer.data(), static_cast<std::size_t>(n));
    }
  }
  archive_write_close(out);
  archive_write_free(out);
  archive_read_free(in);
}

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto init = InitCoordinator(data());
    ASSERT_EQ(init.exit_code, 0) << init.err;
    admin_ = LastLine(init.out);
    auto trust = TrustNewPublisher(dir_.path(), data());
    ASSERT_EQ(trust.exit_code, 0) << trust.err;
  }

  fs::path data() const { return dir_ / "coordinator"; }
  fs::path backup() const { return dir_ / "coordinator.backup"; }

  // A backup of the stopped coordinator.
  void TakeBackup() {
    auto made = Coordinator({"backup", "--data", data().string(), "--out", backup().string()});
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }

  TempDir dir_;
  std::string admin_;
};

// Given users being added one after another while `backup` runs against the
// live daemon, the restored directory should start, pass `fabu audit verify`
// and `fabu-coordinator audit verify` against its checkpoints, hold the users
// u0..uK-1 of some K with no gap (one snapshot), and have the files and
// modes the daemon makes.
TEST_F(BackupTest, ABackupTakenWhileUsersAreAddedRestoresToACoordinatorThatStarts) {
  FABU_SQLITE_ONLY();  // backup and restore copy the SQLite file
  std::vector<std::string> added;
  {
    CoordinatorProcess coordinator(data());
    ASSERT_TRUE(coordinator.started()) << coordinator.log();
    std::atomic<bool> stop{false}, writer_done{false};
    std::atomic<std::size_t> count{0};  // what the main thread may read while the writer runs
    std::thread writer([&] {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      for (int i = 0; i < 60 && !stop && std::chrono::steady_clock::now() < deadline; ++i) {
        auto user = FabuAs(coordinator, admin_,
                           {"user", "add", "u" + std::to_string(i), "--role", "viewer"});
        if (user.exit_code != 0) break;
        added.push_back("u" + std::to_string(i));
        count = added.size();
      }
      writer_done = true;
    });
    // Some users in before the backup starts, more while it runs.
    while (count < 3 && !writer_done) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto made = Coordinator({"backup", "--data", data().string(), "--out", backup().string()});
    stop = true;
    writer.join();
    ASSERT_EQ(made.exit_code, 0) << made.err;
    EXPECT_TRUE(Contains(made.out, "backed up ")) << made.out;
    EXPECT_EQ(ModeOf(backup()), 0600u);
    EXPECT_EQ(coordinator.Stop(), 0) << coordinator.log();
  }
  ASSERT_GE(added.size(), 3u);

  const fs::path restored = dir_ / "restored";
  auto restore = Coordinator({"restore", "--from", backup().string(), "--data", restored.string()});
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  EXPECT_TRUE(Contains(restore.out, "restored " + restored.string())) << restore.out;
  EXPECT_TRUE(Leftovers(dir_.path(), ".restored.").empty());

  // As the daemon keeps them (docs/coordinator.md, "Files and modes").
  EXPECT_EQ(ModeOf(restored), 0700u);
  for (const char* dir : {"trusted", "packages", "tmp"}) {
    EXPECT_EQ(ModeOf(restored / dir), 0700u) << dir;
  }
  for (const char* file :
       {"coordinator.db", "config.json", "ca.pem", "ca.key", "server.pem", "server.key",
        "secret.key", "audit-checkpoint.key", "audit-checkpoint.pub"}) {
    ASSERT_TRUE(fs::exists(restored / file)) << file;
    EXPECT_EQ(ModeOf(restored / file), 0600u) << file;
    if (std::string(file) != "coordinator.db") {
      EXPECT_EQ(ReadFile(restored / file), ReadFile(data() / file)) << file;
    }
  }
  for (const auto& entry : fs::directory_iterator(data() / "trusted")) {
    const fs::path copy = restored / "trusted" / entry.path().filename();
    EXPECT_EQ(ReadFile(copy), ReadFile(entry.path())) << copy;
    EXPECT_EQ(ModeOf(copy), 0600u) << copy;
  }
  EXPECT_FALSE(fs::exists(restored / "serve.log"));
  EXPECT_FALSE(fs::exists(restored / "coordinator.port"));

  CoordinatorProcess again(restored);
  ASSERT_TRUE(again.started()) << again.log();
  auto verify = FabuAs(again, admin_, {"audit", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  auto users = FabuAs(again, admin_, {"user", "list", "--json"});
  ASSERT_EQ(users.exit_code, 0) << users.err;
  std::set<std::string> names;
  for (const json& user : json::parse(users.out)) names.insert(user.value("name", ""));
  std::size_t k = 0;
  while (k < added.size() && names.contains(added[k])) ++k;
  EXPECT_GE(k, 3u) << users.out;
  for (std::size_t i = k; i < added.size(); ++i) {
    EXPECT_FALSE(names.contains(added[i])) << added[i] << " restored after a gap: " << users.out;
  }
  EXPECT_EQ(names.size(), k + 1) << users.out;  // and admin
  // The checkpoints it carries sign heads its store holds.
  auto anchored = Coordinator({"audit", "verify", "--data", restored.string(), "--checkpoint",
                               (restored / "audit-checkpoints.jsonl").string()});
  EXPECT_EQ(anchored.exit_code, 0) << anchored.out << anchored.err;
}

// Given a backup with one byte of config.json flipped, restore should name
// the file whose checksum no longer matches, and given one with a byte of a
// tar header flipped, say the archive is damaged; neither leaves a directory
// behind.
TEST_F(BackupTest, ARestoreRefusesAFlippedByte) {
  FABU_SQLITE_ONLY();  // backup and restore copy the SQLite file
  ASSERT_NO_FATAL_FAILURE(TakeBackup());
  std::string bytes = ReadFile(backup());
  // config.json as init writes it (indented; the store keeps it compact).
  const auto at = bytes.find("\"listen\": \"");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 1] ^= 0x20;
  const fs::path damaged = dir_ / "damaged.backup";
  WriteFile(damaged, bytes);

  const fs::path target = dir_ / "restored";
  auto restore = Coordinator({"restore", "--from", damaged.string(), "--data", target.string()});
  EXPECT_EQ(restore.exit_code, 1);
  EXPECT_TRUE(Contains(restore.err, "fabu-coordinator restore: " + damaged.string() +
                                        " is damaged: config.json does not match its manifest ("))
      << restore.err;
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(Leftovers(dir_.path(), ".restored.").empty());

  // A byte of a member's tar header (its name): the header's checksum fails.
  bytes = ReadFile(backup());
  const auto header = bytes.find(std::string("ca.key\0", 7));
  ASSERT_NE(header, std::string::npos);
  bytes[header + 1] ^= 0x01;
  WriteFile(damaged, bytes);
  restore = Coordinator({"restore", "--from", damaged.string(), "--data", target.string()});
  EXPECT_EQ(restore.exit_code, 1);
  EXPECT_TRUE(Contains(restore.err, "fabu-coordinator restore: " + damaged.string() +
                                        " is damaged or truncated: Damaged tar archive"))
      << restore.err;
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(Leftovers(dir_.path(), ".restored.").empty());
}

// Given a backup cut in half, restore should say it is damaged or truncated
// and leave no directory behind.
TEST_F(BackupTest, ARestoreRefusesATruncatedBackup) {
  FABU_SQLITE_ONLY();  // backup and restore copy the SQLite file
  ASSERT_NO_FATAL_FAILURE(TakeBackup());
  const std::string bytes = ReadFile(backup());
  const fs::path cut = dir_ / "cut.backup";
  WriteFile(cut, bytes.substr(0, bytes.size() / 2));

  const fs::path target = dir_ / "restored";
  auto restore = Coordinator({"restore", "--from", cut.string(), "--data", target.string()});
  EXPECT_EQ(restore.exit_code, 1);
  EXPECT_TRUE(Contains(restore.err,
                       "fabu-coordinator restore: " + cut.string() + " is damaged or truncated: "))
      << restore.err;
  EXPECT_TRUE(Contains(restore.err, "Truncated tar archive")) << restore.err;
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(Leftovers(dir_.path(), ".restored.").empty());
}

// Given a backup that ends before its manifest (cut at a member's end), or
// one missing a member its manifest lists, restore should say it is
// incomplete, naming what is missing.
TEST_F(BackupTest, ARestoreRefusesAPartialBackup) {
  FABU_SQLITE_ONLY();  // backup and restore copy the SQLite file
  ASSERT_NO_FATAL_FAILURE(TakeBackup());
  const fs::path target = dir_ / "restored";

  const fs::path no_manifest = dir_ / "no-manifest.backup";
  ASSERT_NO_FATAL_FAILURE(CopyArchiveWithout(backup(), no_manifest, "manifest.json"));
  auto restore =
      Coordinator({"restore", "--from", no_manifest.string(), "--data", target.string()});
  EXPECT_EQ(restore.exit_code, 1);
  EXPECT_TRUE(Contains(restore.err, "fabu-coordinator restore: " + no_manifest.string() +
                                        " is incomplete: it ends before its manifest.json (a "
                                        "truncated or partial backup)"))
      << restore.err;

  const fs::path no_key = dir_ / "no-key.backup";
  ASSERT_NO_FATAL_FAILURE(CopyArchiveWithout(backup(), no_key, "secret.key"));
  restore = Coordinator({"restore", "--from", no_key.string(), "--data", target.string()});
  EXPECT_EQ(restore.exit_code, 1);
  EXPECT_TRUE(Contains(restore.err, "fabu-coordinator restore: " + no_key.string() +
                                        " is incomplete: secret.key, listed in its manifest, "
                                        "is missing"))
      << restore.err;
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(Leftovers(dir_.path(), ".restored.").empty());
}

// Given a data directory that holds a store, restore should refuse it
// without --force, touching nothing, and replace it whole with --force.
TEST_F(BackupTest, ARestoreReplacesAnInstallationOnlyWithForce) {
  FABU_SQLITE_ONLY();  // backup and restore copy the SQLite file
  ASSERT_NO_FATAL_FAILURE(TakeBackup());
  WriteFile(data() / "after-the-backup", "x");
  const std::string store_before = ReadFile(data() / "coordinator.db");

  auto refused = Coordinator({"restore", "--from", backup().string(), "--data", data().string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(Contains(refused.err, "fabu-coordinator restore: " + data().string() +
                                        " already holds a coordinator (coordinator.db exists): "
                                        "restore replaces it only with --force"))
      << refused.err;
  EXPECT_TRUE(fs::exists(data() / "after-the-backup"));
  EXPECT_EQ(ReadFile(data() / "coordinator.db"), store_before);

  const fs::path other = dir_ / "other";
  WriteFile(other / "notes.txt", "mine");
  refused = Coordinator({"restore", "--from", backup().string(), "--data", other.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(Contains(refused.err, other.string() + " is not empty: restore into a new "
                                                     "directory, or replace it with --force"))
      << refused.err;
  EXPECT_EQ(ReadFile(other / "notes.txt"), "mine");

  auto forced =
      Coordinator({"restore", "--from", backup().string(), "--data", data().string(), "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_FALSE(fs::exists(data() / "after-the-backup"));
  EXPECT_TRUE(fs::exists(data() / "coordinator.db"));
  EXPECT_EQ(ModeOf(data()), 0700u);
  EXPECT_TRUE(Leftovers(dir_.path(), ".coordinator.").empty());
}

// Given config.json naming a key file outside the data directory, backup
// should say that file is not in the backup.
TEST_F(BackupTest, ABackupNamesTheFilesConfigNamesOutsideTheDataDirectory) {
  FABU_SQLITE_ONLY();  // backup and restore copy the SQLite file
  json config = json::parse(ReadFile(data() / "config.json"));
  const fs::path outside = dir_ / "publisher.pub";
  config["trusted_keys"] = json::array({outside.string()});
  WriteFile(data() / "config.json", config.dump(2));
  auto made = Coordinator({"backup", "--data", data().string(), "--out", backup().string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_TRUE(Contains(made.out, "note: config.json names " + outside.string() +
                                     " (trusted_keys), which is not in the backup"))
      << made.out;
}

// Given a configuration that keeps the store in PostgreSQL, backup should
// refuse and point to pg_dump.
TEST_F(BackupTest, ABackupOfAPostgresStoreIsRefusedWithPgDump) {
  json config = json::parse(ReadFile(data() / "config.json"));
  config["store"] = {{"engine", "postgresql"}, {"url", "postgresql://db.example/fabu"}};
  WriteFile(data() / "config.json", config.dump(2));
  auto made = Coordinator({"backup", "--data", data().string(), "--out", backup().string()});
  EXPECT_EQ(made.exit_code, 1);
  EXPECT_TRUE(Contains(made.err,
                       "keeps its store in PostgreSQL (config.json \"store\"): back the "
                       "database up with pg_dump"))
      << made.err;
  EXPECT_FALSE(fs::exists(backup()));
}

}  // namespace
}  // namespace fabu::testing
