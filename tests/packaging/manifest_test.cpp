#include "packaging/manifest.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fmt/format.h"

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

// Each of these links stays inside on its own text; together they do not.
TEST(ManifestTest, ResolvesSymlinkChainsThroughOneAnother) {
  auto with_links = [](std::vector<std::pair<std::string, std::string>> links) {
    json j = GoodManifest();
    for (const auto& [path, target] : links) {
      j["files"].push_back({{"path", path}, {"type", "symlink"}, {"target", target}});
    }
    return ErrorOf(j);
  };
  EXPECT_NE(with_links({{"bin/up", ".."}, {"esc", "bin/up/../etc/passwd"}})
                .find("files: symlink \"esc\" -> \"bin/up/../etc/passwd\" leaves the package "
                      "tree once its links are followed (\"bin/up\" -> \"..\")"),
            std::string::npos);
  EXPECT_NE(with_links({{"bin/up", ".."}, {"bin/hop", "up"}, {"esc", "bin/hop/.."}})
                .find("symlink \"esc\" -> \"bin/hop/..\" leaves the package tree"),
            std::string::npos);
  EXPECT_NE(with_links({{"l1", "l2"}, {"l2", "l3"}, {"l3", "l1"}})
                .find("symlink \"l1\" -> \"l2\" does not resolve: more than 40 links"),
            std::string::npos);
  EXPECT_NE(with_links({{"bin/up", ".."}, {"bin/up2", "up/bin/up"}, {"esc", "bin/up2/.."}})
                .find("symlink \"esc\""),
            std::string::npos);
  // A link as the last component of another's target is followed too.
  EXPECT_NE(with_links({{"bin/up", ".."}, {"top", "bin/up"}, {"bin/x", "../top/.."}})
                .find("symlink \"bin/x\""),
            std::string::npos);
  // Written through a link: refused even when the link stays inside.
  json j = GoodManifest();
  j["files"][3]["target"] = "bin";
  j["files"].push_back({{"path", "current/x"}, {"type", "dir"}, {"mode", "0755"}});
  EXPECT_NE(ErrorOf(j).find("\"current/x\" lies beneath the symlink \"current\""),
            std::string::npos)
      << ErrorOf(j);
  // Chains that stay inside, a deep one and a dangling one, parse.
  EXPECT_EQ(with_links({{"bin/up", ".."},
                        {"bin/a", "up/bin/up/bin/server"},
                        {"b", "bin/a"},
                        {"c", "b"},
                        {"dangling", "no/such/../file"},
                        {"self", "."}}),
            "parsed");
  // Forty links in a row resolve, as they would on Linux; forty-one do not.
  std::vector<std::pair<std::string, std::string>> chain;
  for (int i = 0; i < 39; ++i) chain.push_back({fmt::format("c{}", i), fmt::format("c{}", i + 1)});
  chain.push_back({"c39", "bin/server"});
  EXPECT_EQ(with_links(chain), "parsed");
  chain.back().second = "c40";
  chain.push_back({"c40", "bin/server"});
  EXPECT_NE(with_links(chain).find("symlink \"c0\" -> \"c1\" does not resolve"), std::string::npos);
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
