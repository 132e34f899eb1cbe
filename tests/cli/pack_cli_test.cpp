// `fabu keygen` and `fabu pack` as a publisher and an operator use them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "fmt/format.h"
#include "packaging/keys.hpp"
#include "packaging/manifest.hpp"
#include "tests/packaging/forge.hpp"
#include "tests/support/run_command.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::testing {
namespace {

namespace fs = std::filesystem;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class PackCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = Fabu({"keygen", "--out", (dir_ / "publisher").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    key_id_ = r.out.substr(0, r.out.size() - 1);
    WriteFile(dir_ / "app/bin/server", "#!/bin/sh\necho serving\n");
    fs::permissions(dir_ / "app/bin/server", fs::perms(0755));
    WriteFile(dir_ / "app/etc/app.conf", "port=8080\n");
    WriteFile(dir_ / "hooks/health_check", "#!/bin/sh\nexit 0\n");
    fs::permissions(dir_ / "hooks/health_check", fs::perms(0755));
  }

  std::string Key() const { return (dir_ / "publisher.key").string(); }
  std::string Pub() const { return (dir_ / "publisher.pub").string(); }

  std::string BuildPackage(const std::string& compression = "gzip") {
    const std::string out = (dir_ / ("app-" + compression + ".fabu")).string();
    auto r = Fabu({"pack", "build", "--name", "c3m-video", "--version", "V1.3.0.12", "--from",
                   (dir_ / "app").string(), "--hooks", (dir_ / "hooks").string(), "--key", Key(),
                   "--compression", compression, "--out", out});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, out + "\n");
    return out;
  }

  TempDir dir_;
  std::string key_id_;
};

TEST_F(PackCliTest, KeygenWritesPemFilesAndPrintsTheKeyId) {
  struct stat st {};
  ASSERT_EQ(::stat(Key().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(Contains(ReadFile(Key()), "-----BEGIN PRIVATE KEY-----"));
  EXPECT_TRUE(Contains(ReadFile(Pub()), "-----BEGIN PUBLIC KEY-----"));
  // The key id is the first 16 hex digits of SHA-256 of the raw public key.
  auto raw = RunCommand({"sh", "-c",
                         "openssl pkey -pubin -in '" + Pub() +
                             "' -outform DER | tail -c 32 | sha256sum | cut -c1-16"});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(key_id_ + "\n", raw.out);
}

TEST_F(PackCliTest, KeygenRefusesToOverwriteAKey) {
  const std::string before = ReadFile(Key());
  auto r = Fabu({"keygen", "--out", (dir_ / "publisher").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "already exists")) << r.err;
  EXPECT_EQ(ReadFile(Key()), before);
}

TEST_F(PackCliTest, KeysInteroperateWithTheOpensslCommandLine) {
  EXPECT_EQ(RunCommand({"openssl", "pkey", "-in", Key(), "-noout"}).exit_code, 0);
  EXPECT_EQ(RunCommand({"openssl", "pkey", "-pubin", "-in", Pub(), "-noout"}).exit_code, 0);

  // A manifest signed by `openssl pkeyutl -sign -rawin` verifies with fabu.
  const std::vector<ForgeEntry> entries = {{"a.txt", ForgeType::kFile, 0644, "hello", "", -1}};
  const std::string payload = ForgePayload(entries);
  auto signer = packaging::SigningKey::FromPemFile(Key()).value();
  const std::string manifest = ForgeManifest(entries, payload, signer).ToJson();
  WriteFile(dir_ / "manifest.json", manifest);
  auto sign =
      RunCommand({"openssl", "pkeyutl", "-sign", "-rawin", "-inkey", Key(), "-in",
                  (dir_ / "manifest.json").string(), "-out", (dir_ / "manifest.sig").string()});
  ASSERT_EQ(sign.exit_code, 0) << sign.err;
  const fs::path file = dir_ / "openssl-signed.fabu";
  ForgeTar(file, {{"manifest.json", manifest},
                  {"manifest.sig", ReadFile(dir_ / "manifest.sig")},
                  {"payload.tar.gz", payload}});
  auto r = Fabu({"pack", "verify", file.string(), "--trust", Pub()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "OK forged V1.0.0.1")) << r.out;
}

TEST_F(PackCliTest, RoundTripBuildVerifyInspectExtract) {
  for (const std::string compression : {"gzip", "zstd"}) {
    SCOPED_TRACE(compression);
    const std::string file = BuildPackage(compression);

    auto verify = Fabu({"pack", "verify", file, "--trust", Pub()});
    EXPECT_EQ(verify.exit_code, 0) << verify.err;
    EXPECT_EQ(std::count(verify.out.begin(), verify.out.end(), '\n'), 1) << verify.out;
    EXPECT_TRUE(Contains(verify.out, "OK c3m-video V1.3.0.12")) << verify.out;
    EXPECT_TRUE(Contains(verify.out, key_id_)) << verify.out;

    auto inspect = Fabu({"pack", "inspect", file});
    EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
    EXPECT_TRUE(Contains(inspect.out, "bin/server")) << inspect.out;
    EXPECT_TRUE(Contains(inspect.out, "health_check -> hooks/health_check")) << inspect.out;

    auto json = Fabu({"pack", "inspect", file, "--json"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    auto manifest = nlohmann::json::parse(json.out);
    EXPECT_EQ(manifest["name"], "c3m-video");
    EXPECT_EQ(manifest["payload"]["compression"], compression);
    EXPECT_EQ(manifest["key_id"], key_id_);

    const fs::path out = dir_ / ("installed-" + compression);
    auto extract = Fabu({"pack", "extract", file, "--trust", Pub(), "--to", out.string()});
    EXPECT_EQ(extract.exit_code, 0) << extract.err;
    EXPECT_EQ(ReadFile(out / "bin/server"), ReadFile(dir_ / "app/bin/server"));
    EXPECT_EQ(ReadFile(out / "etc/app.conf"), "port=8080\n");
    EXPECT_EQ(fs::status(out / "hooks/health_check").permissions(), fs::perms(0755));
  }
}

TEST_F(PackCliTest, BuildRefusesBadInput) {
  auto r = Fabu({"pack", "build", "--name", "c3m-video", "--version", "V1.3.0", "--from",
                 (dir_ / "app").string(), "--key", Key()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "--version: version \"V1.3.0\": four parts needed")) << r.err;

  r = Fabu({"pack", "build", "--name", "C3M Video", "--version", "V1.3.0.1", "--from",
            (dir_ / "app").string(), "--key", Key()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "package name")) << r.err;

  r = Fabu({"pack", "build", "--name", "app", "--version", "V1.3.0.1", "--from",
            (dir_ / "app").string(), "--key", Pub()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "not a PEM private key")) << r.err;

  fs::create_symlink("/etc/passwd", dir_ / "app/etc/passwd");
  const std::string out = (dir_ / "escape.fabu").string();
  r = Fabu({"pack", "build", "--name", "app", "--version", "V1.3.0.1", "--from",
            (dir_ / "app").string(), "--key", Key(), "--out", out});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "leaves")) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

// Each refusal an operator can meet, with the words that name it.
TEST_F(PackCliTest, RefusalsNameWhatFailedAndExtractNothing) {
  const std::string good = BuildPackage();
  const std::string original = ReadFile(good);
  const fs::path dest = dir_ / "dest";
  auto expect_refused = [&](const fs::path& file, const std::vector<std::string>& trust,
                            const std::string& needle) {
    std::vector<std::string> verify = {"pack", "verify", file.string()};
    std::vector<std::string> extract = {"pack", "extract", file.string(), "--to", dest.string()};
    for (const auto& t : trust) {
      verify.insert(verify.end(), {"--trust", t});
      extract.insert(extract.end(), {"--trust", t});
    }
    auto v = Fabu(verify);
    EXPECT_EQ(v.exit_code, 1) << v.err;
    EXPECT_EQ(v.out, "");
    EXPECT_TRUE(Contains(v.err, needle)) << "verify: want \"" << needle << "\", got: " << v.err;
    auto x = Fabu(extract);
    EXPECT_EQ(x.exit_code, 1) << x.err;
    EXPECT_TRUE(Contains(x.err, needle)) << "extract: want \"" << needle << "\", got: " << x.err;
    EXPECT_FALSE(fs::exists(dest));
  };

  // A tampered copy: one byte of the payload changed.
  std::string tampered = original;
  const std::size_t gzip_at = original.find("\x1f\x8b\x08", 1024);
  ASSERT_NE(gzip_at, std::string::npos);
  tampered[gzip_at + 40] ^= 0x20;
  WriteFile(dir_ / "tampered.fabu", tampered);
  expect_refused(dir_ / "tampered.fabu", {Pub()}, "payload digest");

  // One byte of the manifest changed: the signature no longer matches.
  tampered = original;
  tampered[520] ^= 0x01;
  WriteFile(dir_ / "tampered-manifest.fabu", tampered);
  expect_refused(dir_ / "tampered-manifest.fabu", {Pub()}, "signature");

  // The wrong key.
  ASSERT_EQ(Fabu({"keygen", "--out", (dir_ / "other").string()}).exit_code, 0);
  expect_refused(good, {(dir_ / "other.pub").string()}, "unknown key " + key_id_);

  // Truncated.
  WriteFile(dir_ / "truncated.fabu", original.substr(0, original.size() / 2));
  expect_refused(dir_ / "truncated.fabu", {Pub()}, "truncated");

  // Re-signed by the trusted key, but holding a path that climbs out.
  auto signer = packaging::SigningKey::FromPemFile(Key()).value();
  const ForgeEntry ok{"ok.txt", ForgeType::kFile, 0644, "fine", "", -1};
  std::string payload = ForgePayload({ok, {"../evil.txt", ForgeType::kFile, 0644, "x", "", -1}});
  ForgePackage(dir_ / "dotdot.fabu", ForgeManifest({ok}, payload, signer).ToJson(), payload,
               signer);
  expect_refused(dir_ / "dotdot.fabu", {Pub()}, "contains \"..\"");
  EXPECT_FALSE(fs::exists(dir_ / "evil.txt"));

  // Re-signed by the trusted key, but with a symlink that leaves the tree.
  payload = ForgePayload({ok, {"etc", ForgeType::kSymlink, 0777, "", "../../../etc", -1}});
  ForgePackage(
      dir_ / "symlink.fabu",
      ForgeManifest({ok, {"etc", ForgeType::kSymlink, 0777, "", "ok.txt", -1}}, payload, signer)
          .ToJson(),
      payload, signer);
  expect_refused(dir_ / "symlink.fabu", {Pub()}, "symlink \"etc\" -> \"../../../etc\"");

  // Not a package at all.
  WriteFile(dir_ / "junk.fabu", "hello, I am not a tar file\n");
  expect_refused(dir_ / "junk.fabu", {Pub()}, "not a fabu package");
}

// Symlinks that leave the tree only once resolved through one another:
// `pack build` refuses to make such a package, and `pack verify` and
// `pack extract` refuse one forged and signed by the trusted key, naming the
// link, with nothing extracted.
TEST_F(PackCliTest, SymlinkChainsThatLeaveTheTreeAreRefusedEverywhere) {
  auto signer = packaging::SigningKey::FromPemFile(Key()).value();
  const fs::path dest = dir_ / "dest";
  const auto cases = HostileSymlinkTrees();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.name);
    const fs::path file = dir_ / fmt::format("hostile-{}.fabu", i);
    const std::string payload = ForgePayload(c.entries);
    ForgePackage(file, ForgeManifest(c.entries, payload, signer).ToJson(), payload, signer);
    auto v = Fabu({"pack", "verify", file.string(), "--trust", Pub()});
    EXPECT_EQ(v.exit_code, 1) << v.err;
    EXPECT_TRUE(Contains(v.err, c.needle)) << v.err;
    auto x = Fabu({"pack", "extract", file.string(), "--trust", Pub(), "--to", dest.string()});
    EXPECT_EQ(x.exit_code, 1) << x.err;
    EXPECT_TRUE(Contains(x.err, c.needle)) << x.err;
    EXPECT_TRUE(Contains(x.err, "nothing was extracted")) << x.err;
    EXPECT_FALSE(fs::exists(dest));

    // The same links in a source tree (files written through a link would
    // land outside it, so only the links and what lies inside).
    const fs::path src = dir_ / fmt::format("src-{}", i);
    fs::create_directories(src);
    for (const auto& e : c.entries) {
      if (e.type == ForgeType::kDir) fs::create_directories(src / e.path);
      if (e.type == ForgeType::kSymlink) fs::create_symlink(e.target, src / e.path);
      if (e.type == ForgeType::kFile && e.path.find('/') == std::string::npos) {
        WriteFile(src / e.path, e.data);
      }
    }
    const std::string out = (dir_ / fmt::format("built-{}.fabu", i)).string();
    auto b = Fabu({"pack", "build", "--name", "app", "--version", "V1.3.0.1", "--from",
                   src.string(), "--key", Key(), "--out", out});
    EXPECT_EQ(b.exit_code, 1) << b.err;
    EXPECT_TRUE(Contains(b.err, c.needle)) << b.err;
    EXPECT_FALSE(fs::exists(out));
  }
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find("fabu-staging"), std::string::npos)
        << "staging left: " << e.path();
  }
}

// Given a disk that fills up while extracting (simulated with a file size
// limit), extraction must fail naming the write and leave nothing behind.
TEST_F(PackCliTest, AFullDiskDuringExtractionLeavesNothing) {
  WriteFile(dir_ / "app/share/big.bin", std::string(1 << 20, 'z'));
  const std::string file = BuildPackage("zstd");
  const fs::path dest = dir_ / "full";
  auto r = RunCommand({"bash", "-c", "trap '' XFSZ; ulimit -f 256; exec \"$0\" \"$@\"", FabuCli(),
                       "pack", "extract", file, "--trust", Pub(), "--to", dest.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "big.bin")) << r.err;
  EXPECT_TRUE(Contains(r.err, "nothing was extracted")) << r.err;
  EXPECT_FALSE(fs::exists(dest));
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find("fabu-staging"), std::string::npos)
        << "staging left: " << e.path();
  }
}

TEST_F(PackCliTest, MissingFilesAreNamed) {
  auto r = Fabu({"pack", "verify", (dir_ / "nope.fabu").string(), "--trust", Pub()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "nope.fabu: cannot open")) << r.err;
  r = Fabu({"pack", "verify", BuildPackage(), "--trust", (dir_ / "nope.pub").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "--trust: ")) << r.err;
  EXPECT_TRUE(Contains(r.err, "nope.pub")) << r.err;
}

}  // namespace
}  // namespace fabu::testing
