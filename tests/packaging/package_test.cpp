// The package reader and writer, exercised through the library.
#include "packaging/package.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include "fmt/format.h"
#include "packaging/growing_file.hpp"
#include "packaging/platform/open_beneath.hpp"
#include "packaging/sha256.hpp"
#include "tests/packaging/forge.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::packaging {
namespace {

namespace fs = std::filesystem;
using testing::ForgeEntry;
using testing::ForgeManifest;
using testing::ForgePackage;
using testing::ForgePayload;
using testing::ForgeType;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

class PackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = std::make_unique<SigningKey>(SigningKey::Generate().value());
    trust_.Add(key_->public_key());
    app_ = dir_ / "app";
    WriteFile(app_ / "bin/server", "#!/bin/sh\necho serving\n");
    fs::permissions(app_ / "bin/server", fs::perms(0755));
    WriteFile(app_ / "etc/app.conf", "port=8080\n");
    WriteFile(app_ / "share/big.bin", std::string(300000, 'x') + "end");
    fs::create_directory(app_ / "empty");
    fs::create_symlink("../bin/server", app_ / "etc/server-link");
  }

  BuildResult Build(Compression compression = Compression::kGzip,
                    const std::string& name = "app.fabu") {
    BuildOptions options;
    options.name = "c3m-video";
    options.version = protocol::Version::Parse("V1.3.0.12").value();
    options.from = app_;
    options.compression = compression;
    options.out = dir_ / name;
    auto built = BuildPackage(options, *key_);
    EXPECT_TRUE(built) << built.error().message();
    return built.value_or(BuildResult{});
  }

  // Expects extraction of `file` to fail with `needle` and leave nothing.
  void ExpectRefused(const fs::path& file, const std::string& needle) {
    const fs::path dest = dir_ / "out" / "dest";
    auto result = ExtractPackage(file, trust_, dest);
    ASSERT_FALSE(result) << "extraction of " << file << " should fail with: " << needle;
    EXPECT_NE(result.error().message().find(needle), std::string::npos)
        << "got: " << result.error().message();
    EXPECT_FALSE(fs::exists(dest)) << "destination left behind";
    if (fs::exists(dir_ / "out")) {
      EXPECT_TRUE(fs::is_empty(dir_ / "out")) << "staging left behind";
    }
    auto verified = VerifyPackage(file, trust_);
    EXPECT_FALSE(verified) << "verify should refuse too";
  }

  // Forges a package whose manifest truthfully signs `entries` as given,
  // then corrupts the description with `edit` (if any).
  fs::path Forge(const std::vector<ForgeEntry>& payload_entries,
                 const std::vector<ForgeEntry>& manifest_entries) {
    const std::string payload = ForgePayload(payload_entries);
    Manifest m = ForgeManifest(manifest_entries, payload, *key_);
    const fs::path file = dir_ / "forged.fabu";
    ForgePackage(file, m.ToJson(), payload, *key_);
    return file;
  }

  TempDir dir_;
  fs::path app_;
  std::unique_ptr<SigningKey> key_;
  TrustStore trust_;
};

TEST_F(PackageTest, RoundTripKeepsContentModesAndLinks) {
  for (auto compression : {Compression::kGzip, Compression::kZstd}) {
    SCOPED_TRACE(std::string(CompressionName(compression)));
    auto built = Build(compression);
    auto verified = VerifyPackage(built.path, trust_);
    ASSERT_TRUE(verified) << verified.error().message();
    EXPECT_EQ(verified->manifest.name, "c3m-video");
    EXPECT_EQ(verified->package_sha256, Sha256::OfFile(built.path).value());
    EXPECT_EQ(verified->package_size, fs::file_size(built.path));

    const fs::path out = dir_ / ("out-" + std::string(CompressionName(compression)));
    auto extracted = ExtractPackage(built.path, trust_, out);
    ASSERT_TRUE(extracted) << extracted.error().message();
    EXPECT_EQ(ReadFile(out / "bin/server"), ReadFile(app_ / "bin/server"));
    EXPECT_EQ(ReadFile(out / "share/big.bin"), ReadFile(app_ / "share/big.bin"));
    EXPECT_EQ(fs::status(out / "bin/server").permissions(), fs::perms(0755));
    EXPECT_EQ(fs::status(out / "etc/app.conf").permissions(), fs::perms(0644));
    EXPECT_TRUE(fs::is_directory(out / "empty"));
    EXPECT_EQ(fs::read_symlink(out / "etc/server-link"), "../bin/server");
    fs::remove(built.path);
  }
}

TEST_F(PackageTest, BuildIsReproducibleForTheSameInputAndTime) {
  BuildOptions options;
  options.name = "c3m-video";
  options.version = protocol::Version{1, 3, 0, 12};
  options.from = app_;
  options.created = 1764100000;
  options.out = dir_ / "a.fabu";
  ASSERT_TRUE(BuildPackage(options, *key_));
  options.out = dir_ / "b.fabu";
  ASSERT_TRUE(BuildPackage(options, *key_));
  EXPECT_EQ(Sha256::OfFile(dir_ / "a.fabu").value(), Sha256::OfFile(dir_ / "b.fabu").value());
}

TEST_F(PackageTest, ExtractIntoAnExistingEmptyDirectory) {
  auto built = Build();
  fs::create_directories(dir_ / "dest");
  auto extracted = ExtractPackage(built.path, trust_, dir_ / "dest");
  ASSERT_TRUE(extracted) << extracted.error().message();
  EXPECT_TRUE(fs::exists(dir_ / "dest/bin/server"));
}

TEST_F(PackageTest, ExtractRefusesANonEmptyDestination) {
  auto built = Build();
  WriteFile(dir_ / "dest/keep.txt", "mine");
  auto extracted = ExtractPackage(built.path, trust_, dir_ / "dest");
  ASSERT_FALSE(extracted);
  EXPECT_NE(extracted.error().message().find("not an empty directory"), std::string::npos);
  EXPECT_EQ(ReadFile(dir_ / "dest/keep.txt"), "mine");
}

// Given a good package, flipping any single byte of manifest.json,
// manifest.sig or the payload must make verification fail.
TEST_F(PackageTest, EveryFlippedByteOfManifestSignatureOrPayloadIsRefused) {
  fs::remove_all(app_ / "share");  // keep the payload small: every byte is tried
  auto built = Build();
  const std::string original = ReadFile(built.path);
  // ustar: a 512-byte header before each member, data padded to 512.
  auto padded = [](std::size_t n) { return (n + 511) / 512 * 512; };
  const std::size_t manifest_size = built.manifest.ToJson().size();
  const std::size_t manifest_at = 512;
  const std::size_t sig_at = manifest_at + padded(manifest_size) + 512;
  const std::size_t payload_at = sig_at + padded(64) + 512;
  ASSERT_EQ(original.substr(manifest_at, 1), "{");
  std::vector<std::pair<std::size_t, std::size_t>> regions = {
      {manifest_at, manifest_size}, {sig_at, 64}, {payload_at, built.manifest.payload.size}};
  const fs::path flipped = dir_ / "flipped.fabu";
  int tried = 0;
  for (auto [start, length] : regions) {
    for (std::size_t i = start; i < start + length; ++i) {
      std::string bytes = original;
      bytes[i] = static_cast<char>(bytes[i] ^ 0x01);
      {
        std::ofstream out(flipped, std::ios::binary | std::ios::trunc);
        out << bytes;
      }
      auto verified = VerifyPackage(flipped, trust_);
      ASSERT_FALSE(verified) << "flipping byte " << i << " was not detected";
      tried++;
    }
  }
  EXPECT_GT(tried, 1000);
}

// Given the quick pre-install check, the signature and expiry are checked and
// the whole file hashed, so a changed payload shows as a different package id.
TEST_F(PackageTest, QuickCheckVerifiesTheSignatureAndHashesTheWholeFile) {
  auto built = Build();
  auto quick = VerifySignatureAndDigest(built.path, trust_);
  ASSERT_TRUE(quick) << quick.error().message();
  EXPECT_EQ(quick->package_sha256, Sha256::OfFile(built.path).value());
  EXPECT_EQ(quick->package_size, fs::file_size(built.path));
  EXPECT_EQ(quick->manifest.name, "c3m-video");

  std::string bytes = ReadFile(built.path);
  const std::size_t gzip_at = bytes.find("\x1f\x8b\x08", 1024);
  ASSERT_NE(gzip_at, std::string::npos);
  bytes[gzip_at + 100] ^= 0x10;
  WriteFile(dir_ / "changed.fabu", bytes);
  auto changed = VerifySignatureAndDigest(dir_ / "changed.fabu", trust_);
  ASSERT_TRUE(changed) << "the manifest and its signature are intact";
  EXPECT_NE(changed->package_sha256, quick->package_sha256);
  EXPECT_FALSE(ExtractPackage(dir_ / "changed.fabu", trust_, dir_ / "never"));

  TrustStore other;
  other.Add(SigningKey::Generate().value().public_key());
  auto untrusted = VerifySignatureAndDigest(built.path, other);
  ASSERT_FALSE(untrusted);
  EXPECT_NE(untrusted.error().message().find("unknown key"), std::string::npos);
  WriteFile(dir_ / "cut.fabu", ReadFile(built.path).substr(0, 700));
  EXPECT_FALSE(VerifySignatureAndDigest(dir_ / "cut.fabu", trust_));
}

// An agent that hashed the file while downloading it checks only the signed
// header, then extracts without hashing the whole file again: the payload's
// digest and every file are still checked against the signed manifest.
TEST_F(PackageTest, HeaderOnlyVerifyAndExtractWithoutTheFileDigest) {
  auto built = Build();
  auto header = VerifySignature(built.path, trust_);
  ASSERT_TRUE(header) << header.error().message();
  EXPECT_EQ(header->manifest.name, "c3m-video");
  EXPECT_TRUE(header->package_sha256.empty());
  EXPECT_EQ(header->package_size, fs::file_size(built.path));

  VerifyOptions options;
  options.file_digest = false;
  auto extracted = ExtractPackage(built.path, trust_, dir_ / "tree", options);
  ASSERT_TRUE(extracted) << extracted.error().message();
  EXPECT_TRUE(extracted->package_sha256.empty());
  EXPECT_EQ(extracted->manifest_json, header->manifest_json);
  EXPECT_EQ(extracted->package_size, fs::file_size(built.path));

  // A scratch copy (a download) is gone once read, before the tree is synced.
  fs::copy_file(built.path, dir_ / "scratch.fabu");
  VerifyOptions scratch = options;
  scratch.remove_file_when_read = true;
  auto from_scratch = ExtractPackage(dir_ / "scratch.fabu", trust_, dir_ / "tree2", scratch);
  ASSERT_TRUE(from_scratch) << from_scratch.error().message();
  EXPECT_FALSE(fs::exists(dir_ / "scratch.fabu"));
  EXPECT_TRUE(fs::exists(dir_ / "tree2"));

  std::string bytes = ReadFile(built.path);
  const std::size_t gzip_at = bytes.find("\x1f\x8b\x08", 1024);
  ASSERT_NE(gzip_at, std::string::npos);
  bytes[gzip_at + 100] ^= 0x10;
  WriteFile(dir_ / "changed.fabu", bytes);
  EXPECT_TRUE(VerifySignature(dir_ / "changed.fabu", trust_)) << "the header is intact";
  auto changed = ExtractPackage(dir_ / "changed.fabu", trust_, dir_ / "never", options);
  ASSERT_FALSE(changed);
  EXPECT_FALSE(fs::exists(dir_ / "never"));
}

TEST_F(PackageTest, ExtractFollowsAFileStillBeingWritten) {
  for (Compression compression : {Compression::kGzip, Compression::kZstd}) {
    SCOPED_TRACE(CompressionName(compression));
    auto built = Build(compression);
    const fs::path part = dir_ / "download.part";
    const fs::path tree = dir_ / fmt::format("followed-{}", CompressionName(compression));
    GrowingFile growing;
    auto writer = testing::WriteGrowing(built.path, part, growing, 1000);
    VerifyOptions options;
    options.growing = &growing;
    auto extracted = ExtractPackage(part, trust_, tree, options);
    writer.join();
    ASSERT_TRUE(extracted) << extracted.error().message();
    EXPECT_EQ(extracted->package_size, fs::file_size(built.path));
    EXPECT_EQ(extracted->package_sha256, Sha256::OfFile(built.path).value());
    EXPECT_EQ(ReadFile(tree / "share/big.bin"), ReadFile(app_ / "share/big.bin"));
    EXPECT_EQ(fs::read_symlink(tree / "etc/server-link"), "../bin/server");
  }
}

TEST_F(PackageTest, AFileAbandonedByItsWriterIsRefusedWithItsReason) {
  auto built = Build();
  const std::size_t size = fs::file_size(built.path);
  for (std::size_t stop : {std::size_t{100}, size / 2, size}) {
    SCOPED_TRACE(stop);
    const fs::path part = dir_ / "download.part";
    const fs::path tree = dir_ / "out" / "tree";
    GrowingFile growing;
    auto writer = testing::WriteGrowing(built.path, part, growing, 4096, stop,
                                        Error(ErrorCode::kUnavailable, "connection reset by peer"));
    VerifyOptions options;
    options.growing = &growing;
    auto extracted = ExtractPackage(part, trust_, tree, options);
    writer.join();
    ASSERT_FALSE(extracted);
    EXPECT_EQ(extracted.error().code(), ErrorCode::kUnavailable);
    EXPECT_NE(extracted.error().message().find("ended before it was whole"), std::string::npos)
        << extracted.error().message();
    EXPECT_NE(extracted.error().message().find("connection reset by peer"), std::string::npos)
        << extracted.error().message();
    EXPECT_FALSE(fs::exists(tree));
    EXPECT_TRUE(!fs::exists(dir_ / "out") || fs::is_empty(dir_ / "out")) << "staging left behind";
  }
}

TEST_F(PackageTest, AFileReplacedUnderAReaderIsRefusedNotWaitedFor) {
  auto built = Build();
  const fs::path part = dir_ / "download.part";
  WriteFile(part, ReadFile(built.path).substr(0, 2048));
  GrowingFile growing;
  growing.Grew(2048);
  std::jthread writer([&] {
    // A download that starts over in a new file: the reader's file stops
    // growing while the writer still reports progress.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    fs::remove(part);
    WriteFile(part, ReadFile(built.path));
    growing.Grew(fs::file_size(built.path));
  });
  VerifyOptions options;
  options.growing = &growing;
  auto extracted = ExtractPackage(part, trust_, dir_ / "tree", options);
  writer.join();
  growing.Complete();
  ASSERT_FALSE(extracted);
  EXPECT_NE(extracted.error().message().find("replaced while it was being read"), std::string::npos)
      << extracted.error().message();
  EXPECT_FALSE(fs::exists(dir_ / "tree"));
}

TEST_F(PackageTest, WrongKeyIsRefusedAsUnknown) {
  auto built = Build();
  TrustStore other;
  other.Add(SigningKey::Generate().value().public_key());
  auto verified = VerifyPackage(built.path, other);
  ASSERT_FALSE(verified);
  EXPECT_NE(verified.error().message().find("unknown key " + key_->public_key().key_id()),
            std::string::npos)
      << verified.error().message();
}

TEST_F(PackageTest, NoTrustedKeysIsAClearError) {
  auto built = Build();
  auto verified = VerifyPackage(built.path, TrustStore{});
  ASSERT_FALSE(verified);
  EXPECT_NE(verified.error().message().find("no trusted publisher keys"), std::string::npos);
}

TEST_F(PackageTest, TruncatedPackagesAreRefused) {
  auto built = Build();
  const std::string original = ReadFile(built.path);
  const std::size_t payload_end = original.find(std::string(1024, '\0'), 2048);
  ASSERT_NE(payload_end, std::string::npos);
  // Cut inside each member's header and data, and just before the payload ends.
  for (std::size_t cut :
       {std::size_t{0}, std::size_t{100}, std::size_t{600}, std::size_t{1100}, std::size_t{1600},
        std::size_t{2100}, payload_end / 2, payload_end - 700, payload_end - 1}) {
    WriteFile(dir_ / "cut.fabu", original.substr(0, cut));
    SCOPED_TRACE(cut);
    EXPECT_FALSE(VerifyPackage(dir_ / "cut.fabu", trust_));
    EXPECT_FALSE(ExtractPackage(dir_ / "cut.fabu", trust_, dir_ / "never"));
    EXPECT_FALSE(fs::exists(dir_ / "never"));
  }
}

TEST_F(PackageTest, ExpiredPackagesAreRefused) {
  BuildOptions options;
  options.name = "c3m-video";
  options.version = protocol::Version{1, 3, 0, 12};
  options.from = app_;
  options.expires = "2027-06-01T00:00:00Z";
  options.out = dir_ / "expiring.fabu";
  ASSERT_TRUE(BuildPackage(options, *key_));
  VerifyOptions before;
  before.now = protocol::ParseRfc3339("2027-05-31T23:59:59Z")->seconds;
  EXPECT_TRUE(VerifyPackage(options.out, trust_, before));
  VerifyOptions after;
  after.now = protocol::ParseRfc3339("2027-06-01T00:00:01Z")->seconds;
  auto verified = VerifyPackage(options.out, trust_, after);
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code(), ErrorCode::kExpired);
  EXPECT_NE(verified.error().message().find("expired at 2027-06-01T00:00:00Z"), std::string::npos);
}

TEST_F(PackageTest, MembersMustComeInOrder) {
  const std::vector<ForgeEntry> entries = {{"a.txt", ForgeType::kFile, 0644, "hello", "", -1}};
  const std::string payload = ForgePayload(entries);
  const std::string manifest = ForgeManifest(entries, payload, *key_).ToJson();
  const std::string sig = testing::SignatureBytes(*key_, manifest);
  const fs::path file = dir_ / "order.fabu";

  testing::ForgeTar(
      file, {{"manifest.sig", sig}, {"manifest.json", manifest}, {"payload.tar.gz", payload}});
  ExpectRefused(file, "order: the first member must be manifest.json");
  testing::ForgeTar(
      file, {{"manifest.json", manifest}, {"payload.tar.gz", payload}, {"manifest.sig", sig}});
  ExpectRefused(file, "manifest.sig is missing");
  testing::ForgeTar(file, {{"manifest.json", manifest}, {"payload.tar.gz", payload}});
  ExpectRefused(file, "manifest.sig is missing");
  testing::ForgeTar(file, {{"manifest.json", manifest}, {"manifest.sig", sig}});
  ExpectRefused(file, "payload.tar.gz is missing");
  testing::ForgeTar(file, {{"manifest.json", manifest},
                           {"manifest.sig", sig},
                           {"payload.tar.gz", payload},
                           {"extra.sh", "rm -rf /"}});
  ExpectRefused(file, "unexpected member \"extra.sh\"");
}

TEST_F(PackageTest, OversizeManifestIsRefusedUnread) {
  std::string huge = "{\"pad\": \"" + std::string(kMaxManifestBytes, 'a') + "\"}";
  const fs::path file = dir_ / "huge.fabu";
  testing::ForgeTar(file, {{"manifest.json", huge},
                           {"manifest.sig", testing::SignatureBytes(*key_, huge)},
                           {"payload.tar.gz", "x"}});
  ExpectRefused(file, "refused unread");
}

// A payload re-signed by a trusted key must still be refused for what it holds.
struct UnsafePayloadCase {
  const char* name;
  std::vector<ForgeEntry> payload;
  std::vector<ForgeEntry> manifest;
  const char* needle;
};

TEST_F(PackageTest, UnsafePayloadsSignedByATrustedKeyAreRefused) {
  const ForgeEntry ok{"ok.txt", ForgeType::kFile, 0644, "fine", "", -1};
  const std::vector<UnsafePayloadCase> cases = {
      {"dot-dot entry",
       {ok, {"../evil", ForgeType::kFile, 0644, "x", "", -1}},
       {ok},
       "contains \"..\""},
      {"nested dot-dot",
       {ok, {"a/../../evil", ForgeType::kFile, 0644, "x", "", -1}},
       {ok},
       "contains \"..\""},
      {"absolute path",
       {ok, {"/tmp/fabu-evil", ForgeType::kFile, 0644, "x", "", -1}},
       {ok},
       "is absolute"},
      {"escaping symlink",
       {ok, {"link", ForgeType::kSymlink, 0777, "", "../../etc", -1}},
       {ok, {"link", ForgeType::kSymlink, 0777, "", "inside", -1}},
       "differs from the manifest"},
      {"absolute symlink",
       {ok, {"link", ForgeType::kSymlink, 0777, "", "/etc/passwd", -1}},
       {ok, {"link", ForgeType::kSymlink, 0777, "", "ok.txt", -1}},
       "differs from the manifest"},
      {"hard link",
       {ok, {"hard", ForgeType::kHardlink, 0644, "", "ok.txt", -1}},
       {ok},
       "is a hard link"},
      {"character device",
       {ok, {"null", ForgeType::kCharDevice, 0666, "", "", -1}},
       {ok},
       "is a character device"},
      {"fifo", {ok, {"pipe", ForgeType::kFifo, 0644, "", "", -1}}, {ok}, "is a FIFO"},
      {"entry not in manifest",
       {ok, {"extra.txt", ForgeType::kFile, 0644, "x", "", -1}},
       {ok},
       "is not in the manifest"},
      {"manifest entry missing",
       {ok},
       {ok, {"gone.txt", ForgeType::kFile, 0644, "x", "", -1}},
       "missing from the payload"},
      {"duplicate path", {ok, ok}, {ok}, "appears twice"},
      {"setuid file",
       {ok, {"suid", ForgeType::kFile, 04755, "x", "", -1}},
       {ok, {"suid", ForgeType::kFile, 0755, "x", "", -1}},
       "setuid"},
      {"size mismatch",
       {ok, {"f", ForgeType::kFile, 0644, "12345", "", -1}},
       {ok, {"f", ForgeType::kFile, 0644, "123", "", -1}},
       "size: \"f\""},
      {"digest mismatch",
       {ok, {"f", ForgeType::kFile, 0644, "abc", "", -1}},
       {ok, {"f", ForgeType::kFile, 0644, "abd", "", -1}},
       "digest: \"f\""},
      {"mode mismatch",
       {ok, {"f", ForgeType::kFile, 0755, "abc", "", -1}},
       {ok, {"f", ForgeType::kFile, 0644, "abc", "", -1}},
       "has mode 0755"},
      {"type mismatch",
       {ok, {"d", ForgeType::kDir, 0755, "", "", -1}},
       {ok, {"d", ForgeType::kFile, 0755, "", "", -1}},
       "is a dir in the payload"},
      {"file beneath a symlink",
       {ok,
        {"ln", ForgeType::kSymlink, 0777, "", ".", -1},
        {"ln/x.txt", ForgeType::kFile, 0644, "x", "", -1}},
       {ok,
        {"ln", ForgeType::kSymlink, 0777, "", ".", -1},
        {"ln/x.txt", ForgeType::kFile, 0644, "x", "", -1}},
       "beneath the symlink"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ExpectRefused(Forge(c.payload, c.manifest), c.needle);
  }
  EXPECT_FALSE(fs::exists("/tmp/fabu-evil"));
}

// Links that each stay inside on their own text but leave the tree, or loop,
// once resolved through one another: verify and extract refuse them before a
// byte of the payload reaches the disk, naming the link.
TEST_F(PackageTest, SymlinkChainsThatLeaveTheTreeAreRefused) {
  for (const auto& c : testing::HostileSymlinkTrees()) {
    SCOPED_TRACE(c.name);
    ExpectRefused(Forge(c.entries, c.entries), c.needle);
  }
  EXPECT_FALSE(fs::exists(dir_.path().parent_path() / "passwd"));
}

// Makes the tree of `entries` on disk under `root`, as a publisher would.
void MakeTree(const fs::path& root, const std::vector<ForgeEntry>& entries) {
  fs::create_directories(root);
  for (const auto& e : entries) {
    switch (e.type) {
      case ForgeType::kDir:
        fs::create_directories(root / e.path);
        break;
      case ForgeType::kSymlink:
        fs::create_directories((root / e.path).parent_path());
        fs::create_symlink(e.target, root / e.path);
        break;
      default:
        WriteFile(root / e.path, e.data);
        break;
    }
  }
}

TEST_F(PackageTest, BuildRefusesSymlinkChainsThatLeaveTheTree) {
  const auto cases = testing::HostileSymlinkTrees();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.name);
    // A file written through a link lands outside the source tree: skip
    // making those, the links alone are the case.
    std::vector<ForgeEntry> on_disk;
    for (const auto& e : c.entries) {
      if (e.path.find('/') != std::string::npos && e.type == ForgeType::kFile) continue;
      on_disk.push_back(e);
    }
    const fs::path src = dir_ / "hostile" / std::to_string(i);
    MakeTree(src, on_disk);
    BuildOptions options;
    options.name = "c3m-video";
    options.from = src;
    options.out = dir_ / "hostile.fabu";
    auto built = BuildPackage(options, *key_);
    ASSERT_FALSE(built);
    EXPECT_NE(built.error().message().find(c.needle), std::string::npos) << built.error().message();
    EXPECT_FALSE(fs::exists(options.out));
  }
}

// Chains that stay inside (library version links, a link to a directory
// named inside another link's target) build, verify and extract as they are.
TEST_F(PackageTest, SymlinkChainsThatStayInsideRoundTrip) {
  fs::remove_all(app_);
  MakeTree(app_, {{"lib/libfoo.so.1.2", ForgeType::kFile, 0644, "elf", "", -1},
                  {"lib/libfoo.so.1", ForgeType::kSymlink, 0777, "", "libfoo.so.1.2", -1},
                  {"lib/libfoo.so", ForgeType::kSymlink, 0777, "", "libfoo.so.1", -1},
                  {"current", ForgeType::kSymlink, 0777, "", "lib", -1},
                  {"bin/foo", ForgeType::kSymlink, 0777, "", "../current/libfoo.so", -1},
                  {"bin/up", ForgeType::kSymlink, 0777, "", "..", -1},
                  {"bin/again", ForgeType::kSymlink, 0777, "", "up/bin/up/lib/../current", -1},
                  {"dangling", ForgeType::kSymlink, 0777, "", "run/app.pid", -1}});
  auto built = Build();
  ASSERT_FALSE(built.path.empty());
  const fs::path out = dir_ / "out";
  auto extracted = ExtractPackage(built.path, trust_, out);
  ASSERT_TRUE(extracted) << extracted.error().message();
  EXPECT_EQ(ReadFile(out / "bin/foo"), "elf");
  EXPECT_EQ(ReadFile(out / "bin/again/libfoo.so"), "elf");
  EXPECT_EQ(fs::read_symlink(out / "bin/up"), "..");
  EXPECT_EQ(fs::read_symlink(out / "dangling"), "run/app.pid");
}

// The manifest need not list every directory: missing parents are made
// (0755); listed directories get their exact mode, a read-only one after
// its children were written.
TEST_F(PackageTest, ExtractMakesMissingParentsAndExactModes) {
  const std::vector<ForgeEntry> entries = {
      {"deep/a/b/file", ForgeType::kFile, 0640, "deep", "", -1},
      {"ro", ForgeType::kDir, 0555, "", "", -1},
      {"ro/file", ForgeType::kFile, 0444, "read only", "", -1},
      {"ro/sub/x", ForgeType::kFile, 0600, "x", "", -1},
  };
  const fs::path out = dir_ / "out";
  auto extracted = ExtractPackage(Forge(entries, entries), trust_, out);
  ASSERT_TRUE(extracted) << extracted.error().message();
  EXPECT_EQ(ReadFile(out / "deep/a/b/file"), "deep");
  EXPECT_EQ(fs::status(out / "deep/a/b/file").permissions(), fs::perms(0640));
  EXPECT_EQ(fs::status(out / "deep/a").permissions(), fs::perms(0755));
  EXPECT_EQ(fs::status(out / "ro").permissions(), fs::perms(0555));
  EXPECT_EQ(fs::status(out / "ro/file").permissions(), fs::perms(0444));
  EXPECT_EQ(ReadFile(out / "ro/sub/x"), "x");
  fs::permissions(out / "ro", fs::perms(0755));
}

// The extraction writer's last line of defence: whatever the tree beneath
// the root holds, a path is never resolved through a symlink or outside.
TEST_F(PackageTest, OpenBeneathNeverLeavesTheRoot) {
  const fs::path root = dir_ / "root";
  const fs::path outside = dir_ / "outside";
  fs::create_directories(root / "sub");
  fs::create_directories(outside);
  fs::create_symlink(outside, root / "abs");
  fs::create_symlink("../outside", root / "rel");
  fs::create_symlink("sub", root / "inside");
  const int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root_fd, 0);
  for (bool openat2 : {true, false}) {
    SCOPED_TRACE(openat2 ? "openat2" : "openat walk");
    for (const char* path : {"abs/f", "rel/f", "inside/f", "../outside/f", "sub/../../outside/f",
                             "/tmp/fabu-beneath-f"}) {
      SCOPED_TRACE(path);
      errno = 0;
      const int fd =
          platform::OpenBeneath(root_fd, path, O_WRONLY | O_CREAT | O_EXCL, 0600, openat2);
      EXPECT_LT(fd, 0);
      if (fd >= 0) ::close(fd);
      EXPECT_TRUE(errno == ELOOP || errno == EXDEV) << std::strerror(errno);
    }
    // A symlink as the last component is not followed either.
    const int link_fd = platform::OpenBeneath(root_fd, "rel", O_RDONLY, 0, openat2);
    EXPECT_LT(link_fd, 0);
    const int fd = platform::OpenBeneath(root_fd, openat2 ? "sub/a" : "sub/b",
                                         O_WRONLY | O_CREAT | O_EXCL, 0600, openat2);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    if (fd >= 0) ::close(fd);
  }
  ::close(root_fd);
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_FALSE(fs::exists("/tmp/fabu-beneath-f"));
  EXPECT_TRUE(fs::exists(root / "sub/a"));
  EXPECT_TRUE(fs::exists(root / "sub/b"));
}

// Given a payload that inflates far beyond what the manifest declares, the
// reader stops at the declared size instead of writing it out.
TEST_F(PackageTest, DecompressionBombStopsAtTheDeclaredSize) {
  const std::string bomb(64 << 20, '\0');  // 64 MiB of zeros, ~64 KiB compressed
  const std::vector<ForgeEntry> payload_entries = {{"bomb", ForgeType::kFile, 0644, bomb, "", -1}};
  const std::vector<ForgeEntry> manifest_entries = {
      {"bomb", ForgeType::kFile, 0644, std::string(1024, '\0'), "", -1}};
  const fs::path file = Forge(payload_entries, manifest_entries);
  EXPECT_LT(fs::file_size(file), 1u << 20);
  ExpectRefused(file, "size: \"bomb\"");
}

TEST_F(PackageTest, BuildRefusesALinkThatLeavesTheTree) {
  fs::create_symlink("../../etc/passwd", app_ / "etc/escape");
  BuildOptions options;
  options.name = "c3m-video";
  options.from = app_;
  options.out = dir_ / "x.fabu";
  auto built = BuildPackage(options, *key_);
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message().find("leaves"), std::string::npos) << built.error().message();
  EXPECT_FALSE(fs::exists(options.out));
}

TEST_F(PackageTest, BuildRefusesFifosAndSetuidFiles) {
  BuildOptions options;
  options.name = "c3m-video";
  options.from = app_;
  options.out = dir_ / "x.fabu";
  ASSERT_EQ(::mkfifo((app_ / "pipe").c_str(), 0644), 0);
  auto built = BuildPackage(options, *key_);
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message().find("is a FIFO"), std::string::npos);
  fs::remove(app_ / "pipe");

  WriteFile(app_ / "bin/suid", "x");
  ::chmod((app_ / "bin/suid").c_str(), 04755);
  built = BuildPackage(options, *key_);
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message().find("setuid"), std::string::npos);
  EXPECT_FALSE(fs::exists(options.out));
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find(".fabu-"), std::string::npos)
        << "temp file left: " << e.path();
  }
}

TEST_F(PackageTest, BuildRefusesDeviceFilesWhenItCanMakeOne) {
  if (::geteuid() != 0) GTEST_SKIP() << "making a device node needs root";
  ASSERT_EQ(::mknod((app_ / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  BuildOptions options;
  options.name = "c3m-video";
  options.from = app_;
  options.out = dir_ / "x.fabu";
  auto built = BuildPackage(options, *key_);
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message().find("character device"), std::string::npos);
}

TEST_F(PackageTest, BuildRecordsHooks) {
  WriteFile(dir_ / "hooks/health_check", "#!/bin/sh\nexit 0\n");
  fs::permissions(dir_ / "hooks/health_check", fs::perms(0755));
  BuildOptions options;
  options.name = "c3m-video";
  options.from = app_;
  options.hooks = dir_ / "hooks";
  options.out = dir_ / "hooks.fabu";
  auto built = BuildPackage(options, *key_);
  ASSERT_TRUE(built) << built.error().message();
  EXPECT_EQ(built->manifest.hooks.at("health_check"), "hooks/health_check");
  auto verified = VerifyPackage(options.out, trust_);
  ASSERT_TRUE(verified) << verified.error().message();

  fs::permissions(dir_ / "hooks/health_check", fs::perms(0644));
  options.out = dir_ / "hooks2.fabu";
  built = BuildPackage(options, *key_);
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message().find("must be an executable file"), std::string::npos);
}

// The project's one hex pair: lower case out, either case in, and nothing
// for what is not an even run of hex digits (a sealed secret, a webhook's
// signature and the package chunks of a PostgreSQL store go through it).
TEST(HexTest, BytesGoToLowerCaseHexAndBackAndWhatIsNotHexIsRefused) {
  const std::vector<std::uint8_t> bytes = {0x00, 0x0f, 0xa5, 0xff, 0x10};
  EXPECT_EQ(ToHex(bytes), "000fa5ff10");
  EXPECT_EQ(FromHex("000fa5ff10"), std::optional(bytes));
  EXPECT_EQ(FromHex("000FA5FF10"), std::optional(bytes));
  EXPECT_EQ(FromHex(""), std::optional(std::vector<std::uint8_t>{}));
  EXPECT_EQ(FromHex("abc"), std::nullopt);
  EXPECT_EQ(FromHex("zz"), std::nullopt);
  EXPECT_EQ(FromHex("0g"), std::nullopt);
}

}  // namespace
}  // namespace fabu::packaging
