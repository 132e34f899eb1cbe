// Pre-flight before the go-live, end to end: real agents answer, without
// installing anything, whether they could install a release now. One has
// its apps root on a tiny tmpfs (a full disk), one runs a newer version, one
// does not trust the publisher key; each is named with its reason, the
// others are ready, `release start` refuses until an approver overrides
// the round with a reason, and the pre-flight is in the audit trail.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "tests/e2e/fleet.hpp"
#include "tests/support/agent_http.hpp"

namespace fabu::e2e {
namespace {

using fabu::testing::ReadFile;

class PreflightE2eTest : public Fleet {
 protected:
  void TearDown() override {
    StopAgents();
    if (mounted_) ::umount2(mounted_->c_str(), MNT_DETACH);
    Fleet::TearDown();
  }
  std::optional<fs::path> mounted_;
};

json HostIn(const json& preflight, const std::string& host) {
  for (const auto& h : preflight["hosts"]) {
    if (h.value("host", "") == host) return h;
  }
  return json::object();
}

std::string Reasons(const json& host) {
  std::string out;
  for (const auto& r : host.value("reasons", json::array())) out += r.get<std::string>() + "; ";
  return out;
}

TEST_F(PreflightE2eTest, EachHostThatCouldNotInstallIsNamedWithItsReason) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(4, "env=production,app=c3m-video", /*start=*/false));
  // web-1: its apps root on a 256 KiB tmpfs, far too small for the tree.
  const fs::path small = agents_[0].apps();
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=256k,mode=0755") != 0) {
    // scripts/test runs as root (CI does); a developer's unprivileged run cannot mount.
    if (errno == EPERM) GTEST_SKIP() << "mounting a tmpfs needs root (CAP_SYS_ADMIN)";
    FAIL() << "mounting a tmpfs on " << small << ": " << std::strerror(errno);
  }
  mounted_ = small;
  // web-2: a newer version of the app already runs there.
  fs::create_directories(agents_[1].app() / "releases" / "V9.0.0.0");
  fs::create_symlink("releases/V9.0.0.0", agents_[1].app() / "current");
  // web-3: trusts no publisher key.
  ASSERT_NO_FATAL_FAILURE(EditConfig(agents_[2], {{"trusted_keys", json::array()}}));
  for (Agent& agent : agents_) ASSERT_NO_FATAL_FAILURE(StartAgent(agent));

  const Package v1 = BuildAndUpload(kV1, 2 * 1024 * 1024);
  const std::string id = Scheduled(v1);  // submit and schedule each asked a round already
  auto asked = As(rm_, {"release", "preflight", id, "--wait", "30", "--json"});
  EXPECT_EQ(asked.exit_code, 3) << asked.out << asked.err;  // a host would fail
  const json preflight = json::parse(asked.out, nullptr, false)["preflight"];
  ASSERT_TRUE(preflight.is_object()) << asked.out;
  EXPECT_EQ(preflight.value("waiting", -1), 0) << preflight.dump(2);
  EXPECT_EQ(preflight.value("ready", 0), 1) << preflight.dump(2);
  EXPECT_EQ(preflight.value("would_fail", 0), 3) << preflight.dump(2);

  const json full = HostIn(preflight, "web-1");
  EXPECT_EQ(full.value("state", ""), "would_fail");
  EXPECT_NE(Reasons(full).find("not enough free space in " + small.string()), std::string::npos)
      << full.dump(2);
  const json newer = HostIn(preflight, "web-2");
  EXPECT_EQ(newer.value("state", ""), "would_fail");
  EXPECT_EQ(newer.value("installed_version", ""), "V9.0.0.0");
  EXPECT_NE(Reasons(newer).find("V1.0.0.1 would be a downgrade"), std::string::npos)
      << newer.dump(2);
  const json untrusted = HostIn(preflight, "web-3");
  EXPECT_EQ(untrusted.value("state", ""), "would_fail");
  EXPECT_NE(Reasons(untrusted).find("which this agent does not trust"), std::string::npos)
      << untrusted.dump(2);
  const json ready = HostIn(preflight, "web-4");
  EXPECT_EQ(ready.value("state", ""), "ready") << ready.dump(2);
  EXPECT_GT(ready.value("free_bytes", 0.0), 0.0);
  // Nothing was installed or downloaded anywhere.
  EXPECT_FALSE(fs::exists(agents_[3].app() / "current"));
  EXPECT_FALSE(fs::exists(agents_[3].data() / "downloads") &&
               !fs::is_empty(agents_[3].data() / "downloads"));

  // The console's page of it: the first hosts only, those that would fail
  // first, with the whole round's counts.
  fabu::testing::AgentHttpClient api(Url(), Ca());
  const auto page_reply =
      api.Request("GET", "/api/v1/releases/" + id + "/preflight?host_limit=2", viewer_);
  ASSERT_EQ(page_reply.status, 200) << page_reply.body;
  const json page = json::parse(page_reply.body)["preflight"];
  ASSERT_EQ(page["hosts"].size(), 2u) << page.dump(2);
  EXPECT_EQ(page["hosts"][0].value("state", ""), "would_fail") << page.dump(2);
  EXPECT_EQ(page["hosts"][1].value("state", ""), "would_fail") << page.dump(2);
  EXPECT_EQ(page.value("hosts_total", 0), 4) << page.dump(2);
  EXPECT_EQ(page.value("would_fail", 0), 3) << page.dump(2);
  EXPECT_EQ(page.value("ready", 0), 1) << page.dump(2);
  EXPECT_FALSE(page["hosts"][0]["reasons"].empty()) << page.dump(2);

  // The table a person reads.
  auto shown = As(viewer_, {"release", "preflight", id, "--show"});
  EXPECT_EQ(shown.exit_code, 3);
  EXPECT_NE(shown.out.find("1 ready, 3 would fail"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("web-2"), std::string::npos) << shown.out;

  // The plan record the go-live reviewers read carries the round.
  auto record = As(viewer_, {"release", "export", id, "--doc", "plan", "--format", "md"});
  ASSERT_EQ(record.exit_code, 0) << record.err;
  EXPECT_NE(record.out.find("Pre-flight: could each production host install it now"),
            std::string::npos)
      << record.out;
  EXPECT_NE(record.out.find("would be a downgrade"), std::string::npos) << record.out;

  // The start is refused, naming the hosts and why.
  auto refused = As(rm_, {"release", "start", id});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("would fail"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("web-2"), std::string::npos) << refused.err;
  EXPECT_EQ(State(id), "scheduled");
  // Only an approver overrides, with a reason; then it starts.
  auto by_rm = As(rm_, {"release", "preflight", id, "--override", "--reason", "x"});
  EXPECT_NE(by_rm.exit_code, 0);
  EXPECT_NE(by_rm.err.find("approver"), std::string::npos) << by_rm.err;
  auto overridden = As(wang_, {"release", "preflight", id, "--override", "--reason",
                               "web-1..3 are excluded by the site team today"});
  ASSERT_EQ(overridden.exit_code, 0) << overridden.err;
  auto started = As(rm_, {"release", "start", id});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  // And the pre-flight was right: the three it named fail, the ready one
  // installs (one wave, no failure tolerated: the release ends failed).
  ASSERT_EQ(WaitForFinal(id), "failed") << Status(id).dump(2);
  const json status = Status(id);
  for (const auto& h : status["hosts"]) {
    const std::string host = h.value("host", "");
    EXPECT_EQ(h.value("result", ""), host == "web-4" ? "succeeded" : "failed") << h.dump(2);
  }
  EXPECT_EQ(Current(agents_[3]), fs::path("releases") / kV1);
  const auto audited = QueryStore(
      "SELECT action FROM audit_log WHERE object_id = '" + id +
      "' AND action IN ('release.preflight', 'release.preflight-override') ORDER BY seq");
  ASSERT_GE(audited.size(), 3u);  // submit, schedule, the person's, the override
  EXPECT_EQ(audited.back()[0], "release.preflight-override");
}

}  // namespace
}  // namespace fabu::e2e
