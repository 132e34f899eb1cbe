#include "packaging/manifest.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace fabu::packaging {
namespace {

using nlohmann::json;

json GoodManifest() {
  return json::parse(R"({
    "format": 1, "name": "c3m-video", "version": "V1.3.0.12",
    "created": "2026-11-25T21:00:00Z", "key_id": "0123456789abcdef",
    "payload": {"file": "payload.tar.gz", "compression": "gzip", "size": 1234,
                "sha256": "00000000000000000000000000000000000000000000000000000000000000aa"},
    "files": [{"path": "bin", "type": "dir", "mode": "0755"},
              {"path": "bin/server", "type": "file", "size": 10, "mode": "0755",
               "sha256": "00000000000000000000000000000000000000000000000000000000000000bb"},
              {"path": "hooks/health_check", "type": "file", "size": 3, "mode": "0755",
               "sha256": "00000000000000000000000000000000000000000000000000000000000000cc"},
              {"path": "current", "type": "symlink", "target": "bin/server"}],
    "hooks": {"health_check": "hooks/health_check"},
    "expires": "2027-06-01T00:00:00Z", "targets": {"os": "linux", "arch": "x86_64"}})");
}

std::string ErrorOf(const json& j) {
  auto m = Manifest::Parse(j.dump());
  return m ? "parsed" : m.error().message();
}

TEST(ManifestTest, ParsesTheDocumentedExample) {
  auto m = Manifest::Parse(GoodManifest().dump());
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->name, "c3m-video");
  EXPECT_EQ(m->version.ToString(), "V1.3.0.12");
  EXPECT_EQ(m->files.size(), 4u);
  EXPECT_EQ(m->files[1].mode, 0755u);
  EXPECT_EQ(m->TotalFileBytes(), 13u);
  EXPECT_EQ(m->hooks.at("health_check"), "hooks/health_check");
  EXPECT_EQ(m->targets.at("arch"), "x86_64");
  EXPECT_EQ(m->FileName(), "c3m-video-V1.3.0.12.fabu");
}

TEST(ManifestTest, RoundTripsThroughJson) {
  auto m = Manifest::Parse(GoodManifest().dump());
  ASSERT_TRUE(m);
  auto again = Manifest::Parse(m->ToJson());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->ToJson(), m->ToJson());
}

TEST(ManifestTest, NamesTheFieldAtFault) {
  json j = GoodManifest();
  j["files"][1]["sha256"] = "xyz";
  EXPECT_NE(ErrorOf(j).find("files[1].sha256"), std::string::npos) << ErrorOf(j);
  j = GoodManifest();
  j["files"][1].erase("size");
  EXPECT_NE(ErrorOf(j).find("files[1].size: missing"), std::string::npos) << ErrorOf(j);
  j = GoodManifest();
  j["payload"]["compression"] = "bzip2";
  EXPECT_NE(ErrorOf(j).find("payload.compression"), std::string::npos) << ErrorOf(j);
  j = GoodManifest();
  j["version"] = "V1.3.0";
  EXPECT_NE(ErrorOf(j).find("version: "), std::string::npos) << ErrorOf(j);
  j = GoodManifest();
  j["format"] = 2;
  EXPECT_NE(ErrorOf(j).find("format: version 2 is not supported"), std::string::npos);
  j = GoodManifest();
  j["expires"] = "next tuesday";
  EXPECT_NE(ErrorOf(j).find("expires"), std::string::npos) << ErrorOf(j);
}

TEST(ManifestTest, RefusesUnsafePaths) {
  for (const char* bad : {"/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", ""}) {
    json j = GoodManifest();
    j["files"][1]["path"] = bad;
    EXPECT_NE(ErrorOf(j), "parsed") << bad;
  }
}

TEST(ManifestTest, RefusesDuplicatePaths) {
  json j = GoodManifest();
  j["files"][0]["path"] = "bin/server";
  EXPECT_NE(ErrorOf(j).find("listed twice"), std::string::npos) << ErrorOf(j);
}

TEST(ManifestTest, RefusesEscapingSymlinks) {
  for (const char* bad : {"../../etc/passwd", "/etc/passwd", "../x", "a/../../x"}) {
    json j = GoodManifest();
    j["files"][3]["target"] = bad;
    EXPECT_NE(ErrorOf(j).find("leaves the package tree"), std::string::npos) << bad;
  }
  json j = GoodManifest();
  j["files"][3]["path"] = "bin/link";
  j["files"][3]["target"] = "../hooks/health_check";  // inside: bin/.. is the root
  EXPECT_EQ(ErrorOf(j), "parsed");
}

TEST(ManifestTest, RefusesSetuidModesAndOtherTypes) {
  json j = GoodManifest();
  j["files"][1]["mode"] = "4755";
  EXPECT_NE(ErrorOf(j).find("setuid"), std::string::npos);
  j = GoodManifest();
  j["files"][1]["type"] = "chardev";
  EXPECT_NE(ErrorOf(j).find("not allowed"), std::string::npos);
  j = GoodManifest();
  j["files"][1]["mode"] = "rwxr-xr-x";
  EXPECT_NE(ErrorOf(j).find("octal"), std::string::npos);
}

TEST(ManifestTest, HooksMustBeExecutablePayloadFiles) {
  json j = GoodManifest();
  j["hooks"]["activate"] = "hooks/missing";
  EXPECT_NE(ErrorOf(j).find("hooks.activate"), std::string::npos);
  j = GoodManifest();
  j["hooks"]["reboot"] = "hooks/health_check";
  EXPECT_NE(ErrorOf(j).find("unknown hook"), std::string::npos);
  j = GoodManifest();
  j["files"][2]["mode"] = "0644";
  EXPECT_NE(ErrorOf(j).find("not an executable file"), std::string::npos);
}

TEST(ManifestTest, RefusesOversizeManifestBeforeParsing) {
  std::string big(kMaxManifestBytes + 1, ' ');
  auto m = Manifest::Parse(big);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kTooLarge);
}

TEST(ManifestTest, ValidatesPackageNames) {
  EXPECT_TRUE(CheckPackageName("c3m-video"));
  EXPECT_TRUE(CheckPackageName("app_2.x"));
  EXPECT_FALSE(CheckPackageName(""));
  EXPECT_FALSE(CheckPackageName("App"));
  EXPECT_FALSE(CheckPackageName("-app"));
  EXPECT_FALSE(CheckPackageName("a/b"));
  EXPECT_FALSE(CheckPackageName(std::string(65, 'a')));
}

}  // namespace
}  // namespace fabu::packaging
