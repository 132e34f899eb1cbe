// Package upload: verified against the trusted publisher keys, stored
// content-addressed and read-only; refused packages leave nothing behind.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "tests/support/coordinator_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store.hpp"

namespace fabu::testing {
namespace {

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::size_t CountFiles(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

class PackageUploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto init = InitCoordinator(data());
    ASSERT_EQ(init.exit_code, 0) << init.err;
    admin_token_ = LastLine(init.out);
    auto trust = TrustNewPublisher(dir_.path(), data());
    ASSERT_EQ(trust.exit_code, 0) << trust.out << trust.err;
    WriteFile(dir_ / "app" / "bin" / "app", "#!/bin/sh\necho app\n");
    WriteFile(dir_ / "app" / "etc" / "app.conf", "port=8080\n");
    package_ = Build("publisher", "V1.0.0.1");
    daemon_ = std::make_unique<CoordinatorProcess>(data());
    ASSERT_TRUE(daemon_->started()) << daemon_->log();
  }

  std::filesystem::path data() const { return dir_ / "coordinator"; }

  std::filesystem::path Build(const std::string& key, const std::string& version) {
    const auto out = dir_ / ("app-" + version + "-" + key + ".fabu");
    auto r = Fabu({"pack", "build", "--name", "app", "--version", version, "--from",
                   (dir_ / "app").string(), "--key", (dir_ / (key + ".key")).string(), "--out",
                   out.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }

  CommandResult As(const std::string& token, const std::vector<std::string>& args) {
    return FabuAs(*daemon_, token, args);
  }

  // Nothing but the stored packages: no temp upload left, no extra file.
  void ExpectStoredPackages(std::size_t count) {
    EXPECT_EQ(CountFiles(data() / "packages"), count);
    EXPECT_EQ(CountFiles(data() / "tmp"), 0u);
    auto list = As(admin_token_, {"package", "list", "--json"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    EXPECT_EQ(nlohmann::json::parse(list.out).size(), count) << list.out;
  }

  TempDir dir_;
  std::string admin_token_;
  std::filesystem::path package_;
  std::unique_ptr<CoordinatorProcess> daemon_;
};

TEST_F(PackageUploadTest, AVerifiedPackageIsStoredUnderItsDigestReadOnly) {
  auto up = As(admin_token_, {"package", "upload", package_.string()});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  const std::string id = LastLine(up.out);
  EXPECT_EQ(up.out, id + "\n");
  EXPECT_EQ(id.size(), 64u);

  const auto stored = data() / "packages" / (id + ".fabu");
  ASSERT_TRUE(std::filesystem::exists(stored));
  EXPECT_EQ(ReadFile(stored), ReadFile(package_));
  const auto perms = std::filesystem::status(stored).permissions();
  EXPECT_EQ(perms & (std::filesystem::perms::owner_write | std::filesystem::perms::group_write |
                     std::filesystem::perms::others_write),
            std::filesystem::perms::none);
  auto sha = RunCommand({"sha256sum", stored.string()});
  EXPECT_EQ(sha.out.substr(0, 64), id);

  auto list = As(admin_token_, {"package", "list"});
  EXPECT_TRUE(Contains(list.out, id)) << list.out;
  EXPECT_TRUE(Contains(list.out, "V1.0.0.1")) << list.out;
  auto show = As(admin_token_, {"package", "show", id, "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(nlohmann::json::parse(show.out)["manifest"]["name"], "app");
  ExpectStoredPackages(1);
}

TEST_F(PackageUploadTest, TheSameUploadTwiceIsIdempotent) {
  auto first = As(admin_token_, {"package", "upload", package_.string()});
  auto second = As(admin_token_, {"package", "upload", package_.string()});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(first.out, second.out);
  ExpectStoredPackages(1);
  auto audit = As(admin_token_, {"audit", "list", "--json"});
  const auto entries = nlohmann::json::parse(audit.out);
  int uploads = 0;
  for (const auto& e : entries) uploads += e["action"] == "package.upload" ? 1 : 0;
  EXPECT_EQ(uploads, 1);
}

TEST_F(PackageUploadTest, OtherContentUnderAStoredNameAndVersionIsRefused) {
  auto first = As(admin_token_, {"package", "upload", package_.string()});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string id = LastLine(first.out);

  // The same name and version, built from other files: another content.
  WriteFile(dir_ / "app" / "etc" / "app.conf", "port=9090\n");
  const auto other = dir_ / "other.fabu";
  auto built = Fabu({"pack", "build", "--name", "app", "--version", "V1.0.0.1", "--from",
                     (dir_ / "app").string(), "--key", (dir_ / "publisher.key").string(), "--out",
                     other.string()});
  ASSERT_EQ(built.exit_code, 0) << built.err;
  ASSERT_NE(ReadFile(other), ReadFile(package_));
  auto refused = As(admin_token_, {"package", "upload", other.string()});
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  EXPECT_TRUE(Contains(refused.err, "409") || Contains(refused.err, "conflict")) << refused.err;
  EXPECT_TRUE(Contains(refused.err, id)) << "the message names the stored package: " << refused.err;
  ExpectStoredPackages(1);

  // The stored content again stays idempotent.
  auto again = As(admin_token_, {"package", "upload", package_.string()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(LastLine(again.out), id);
  ExpectStoredPackages(1);
}

TEST_F(PackageUploadTest, ATamperedPackageIsRefusedAndNothingKept) {
  std::string bytes = ReadFile(package_);
  bytes[bytes.size() - 2000] ^= 0x20;  // inside the payload, past the signed manifest
  const auto tampered = dir_ / "tampered.fabu";
  WriteFile(tampered, bytes);
  auto up = As(admin_token_, {"package", "upload", tampered.string()});
  EXPECT_NE(up.exit_code, 0);
  EXPECT_EQ(up.out, "");
  EXPECT_TRUE(Contains(up.err, "package refused")) << up.err;
  EXPECT_TRUE(Contains(up.err, "422") || Contains(up.err, "400")) << up.err;
  // The refusal names the uploader's file, never the coordinator's temporary copy.
  EXPECT_TRUE(Contains(up.err, "fabu package upload " + tampered.string() + ": ")) << up.err;
  EXPECT_FALSE(Contains(up.err, data().string())) << up.err;
  ExpectStoredPackages(0);
}

TEST_F(PackageUploadTest, APackageFromAnUntrustedPublisherIsRefused) {
  ASSERT_EQ(Fabu({"keygen", "--out", (dir_ / "stranger").string()}).exit_code, 0);
  const auto foreign = Build("stranger", "V1.0.0.2");
  auto up = As(admin_token_, {"package", "upload", foreign.string()});
  EXPECT_NE(up.exit_code, 0);
  EXPECT_TRUE(Contains(up.err, "package refused")) << up.err;
  ExpectStoredPackages(0);
}

// Given a trusted publisher, `trust list` should name its key; once `trust
// remove` took it (with a reason, audited), the next upload it signed is
// refused while the packages stored before stay.
TEST_F(PackageUploadTest, ARemovedPublisherKeySignsNoNewUpload) {
  auto first = As(admin_token_, {"package", "upload", package_.string()});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // A second publisher stays trusted throughout.
  ASSERT_EQ(Fabu({"keygen", "--out", (dir_ / "other").string()}).exit_code, 0);
  auto other = RunCommand({CoordinatorBinary(), "trust", "add", "--data", data().string(),
                           (dir_ / "other.pub").string()});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  const std::string other_id = LastLine(other.out);
  auto listed = RunCommand({CoordinatorBinary(), "trust", "list", "--data", data().string()});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::string key_id;
  for (std::size_t at = 0; at < listed.out.size();) {
    const std::size_t end = listed.out.find('\n', at);
    const std::string line = listed.out.substr(at, end - at);
    const std::string id = line.substr(0, line.find(' '));
    EXPECT_TRUE(Contains(line, (data() / "trusted" / (id + ".pub")).string())) << line;
    if (id != other_id) key_id = id;
    at = end == std::string::npos ? listed.out.size() : end + 1;
  }
  ASSERT_FALSE(key_id.empty()) << listed.out;
  ASSERT_TRUE(Contains(listed.out, other_id)) << listed.out;

  auto no_reason = RunCommand(
      {CoordinatorBinary(), "trust", "remove", "--data", data().string(), key_id, "--reason", " "});
  EXPECT_NE(no_reason.exit_code, 0);
  EXPECT_TRUE(Contains(no_reason.err, "needs a reason")) << no_reason.err;
  auto unknown = RunCommand({CoordinatorBinary(), "trust", "remove", "--data", data().string(),
                             "nosuchkey", "--reason", "r"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_TRUE(Contains(unknown.err, "no trusted publisher key has the id nosuchkey"))
      << unknown.err;
  auto removed = RunCommand({CoordinatorBinary(), "trust", "remove", "--data", data().string(),
                             key_id, "--reason", "publisher key retired"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_TRUE(Contains(removed.out, "publisher key " + key_id + " is no longer trusted"))
      << removed.out;
  auto after = RunCommand({CoordinatorBinary(), "trust", "list", "--data", data().string()});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_FALSE(Contains(after.out, key_id)) << after.out;
  EXPECT_TRUE(Contains(after.out, other_id)) << after.out;

  // The running coordinator refuses the next upload signed by it, and takes
  // the other publisher's.
  const auto v2 = Build("publisher", "V1.0.0.2");
  auto up = As(admin_token_, {"package", "upload", v2.string()});
  EXPECT_NE(up.exit_code, 0);
  EXPECT_TRUE(Contains(up.err, "unknown key " + key_id)) << up.err;
  ExpectStoredPackages(1);
  const auto by_other = Build("other", "V1.0.0.3");
  auto taken = As(admin_token_, {"package", "upload", by_other.string()});
  EXPECT_EQ(taken.exit_code, 0) << taken.err;
  auto audit = As(admin_token_, {"audit", "list", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(Contains(audit.out, "trust.remove")) << audit.out.substr(0, 400);
  EXPECT_TRUE(Contains(audit.out, "publisher key retired"));
  ExpectStoredPackages(2);
}

TEST_F(PackageUploadTest, NotAPackageIsRefused) {
  const auto junk = dir_ / "junk.fabu";
  WriteFile(junk, std::string(10000, 'j'));
  auto up = As(admin_token_, {"package", "upload", junk.string()});
  EXPECT_NE(up.exit_code, 0);
  EXPECT_TRUE(Contains(up.err, "package refused")) << up.err;
  ExpectStoredPackages(0);
}

TEST_F(PackageUploadTest, AViewerMayNotUpload) {
  auto add = As(admin_token_, {"user", "add", "vic", "--role", "viewer"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  auto up = As(LastLine(add.out), {"package", "upload", package_.string()});
  EXPECT_NE(up.exit_code, 0);
  EXPECT_TRUE(Contains(up.err, "needs role admin or release_manager")) << up.err;
  ExpectStoredPackages(0);
}

TEST_F(PackageUploadTest, AnUploadOverItsLimitGets413) {
  ASSERT_EQ(daemon_->Stop(), 0);
  auto config = nlohmann::json::parse(ReadFile(data() / "config.json"));
  config["limits"]["upload_bytes"] = 1024;
  WriteFile(data() / "config.json", config.dump(2));
  daemon_ = std::make_unique<CoordinatorProcess>(data());
  ASSERT_TRUE(daemon_->started()) << daemon_->log();
  auto up = As(admin_token_, {"package", "upload", package_.string()});
  EXPECT_NE(up.exit_code, 0);
  EXPECT_TRUE(Contains(up.err, "413")) << up.err;
  EXPECT_TRUE(Contains(up.err, "over the limit of 1024 bytes for uploads")) << up.err;
  ExpectStoredPackages(0);
}

TEST_F(PackageUploadTest, TrustAddRefusesAFileThatIsNoKey) {
  WriteFile(dir_ / "bogus.pub", "not a key\n");
  auto r = RunCommand({CoordinatorBinary(), "trust", "add", "--data", data().string(),
                       (dir_ / "bogus.pub").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "bogus.pub")) << r.err;
}

// Runs one SQL statement on the store while the daemon runs (SQLite's
// locking lets another process in): here, to date an upload back.
void RunSql(const std::filesystem::path& db, const std::string& statement) {
  StoreExec(db.parent_path(), statement);
}

CommandResult Gc(const std::filesystem::path& data) {
  return RunCommand({CoordinatorBinary(), "gc", "--data", data.string()});
}

TEST_F(PackageUploadTest, GcWhileTheDaemonRunsRemovesOnlyAnOldUnusedPackageAndIsAudited) {
  auto old_one = As(admin_token_, {"package", "upload", package_.string()});
  ASSERT_EQ(old_one.exit_code, 0) << old_one.err;
  const std::string old_id = LastLine(old_one.out);
  auto new_one = As(admin_token_, {"package", "upload", Build("publisher", "V1.0.0.2").string()});
  ASSERT_EQ(new_one.exit_code, 0) << new_one.err;
  // V1.0.0.1 was uploaded two years ago; no release names it, no host has it.
  RunSql(data() / "coordinator.db",
         "UPDATE packages SET uploaded = '2024-11-01T00:00:00.000Z' WHERE version = 'V1.0.0.1'");

  auto gc = Gc(data());
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_TRUE(Contains(gc.out, "removed package app V1.0.0.1 (" + old_id)) << gc.out;
  EXPECT_TRUE(Contains(gc.out, "gc (retention 365 days")) << gc.out;
  EXPECT_TRUE(Contains(gc.out, "removed 1 package(s)")) << gc.out;
  EXPECT_TRUE(Contains(gc.out, "kept 1 package(s)")) << gc.out;
  EXPECT_FALSE(std::filesystem::exists(data() / "packages" / (old_id + ".fabu")));
  ExpectStoredPackages(1);

  auto audit = As(admin_token_, {"audit", "list", "--json"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  const auto entries = nlohmann::json::parse(audit.out);
  bool audited = false;
  for (const auto& entry : entries) {
    if (entry.value("action", "") != "retention.gc") continue;
    audited = true;
    EXPECT_EQ(entry["detail"]["packages"], 1) << entry.dump();
  }
  EXPECT_TRUE(audited) << audit.out;
  auto verify = As(admin_token_, {"audit", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  ASSERT_EQ(daemon_->Stop(), 0) << daemon_->log();
  auto anchored = RunCommand({CoordinatorBinary(), "audit", "verify", "--data", data().string(),
                              "--checkpoint", (data() / "audit-checkpoints.jsonl").string()});
  EXPECT_EQ(anchored.exit_code, 0) << anchored.out << anchored.err;

  // Nothing more to remove; the removed package may be uploaded again.
  auto again = Gc(data());
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(Contains(again.out, "removed 0 package(s)")) << again.out;
  daemon_ = std::make_unique<CoordinatorProcess>(data());
  ASSERT_TRUE(daemon_->started()) << daemon_->log();
  auto reupload = As(admin_token_, {"package", "upload", package_.string()});
  ASSERT_EQ(reupload.exit_code, 0) << reupload.err;
  EXPECT_EQ(LastLine(reupload.out), old_id);
  ExpectStoredPackages(2);
}

TEST_F(PackageUploadTest, GcAndServeRefuseABadRetentionNamingTheField) {
  ASSERT_EQ(daemon_->Stop(), 0);
  auto config = nlohmann::json::parse(ReadFile(data() / "config.json"));
  config["retention"] = {{"days", -5}};
  WriteFile(data() / "config.json", config.dump(2));
  auto gc = Gc(data());
  EXPECT_EQ(gc.exit_code, 1);
  EXPECT_TRUE(Contains(gc.err, "retention.days: expected an integer from 0")) << gc.err;
  EXPECT_TRUE(Contains(gc.err, "config.json")) << gc.err;
  CoordinatorProcess refused(data(), std::chrono::seconds(10));
  EXPECT_FALSE(refused.started());
  EXPECT_TRUE(Contains(refused.log(), "retention.days")) << refused.log();
}

}  // namespace
}  // namespace fabu::testing
