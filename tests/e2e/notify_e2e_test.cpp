// Release notices end to end: subscriptions made
// with the real fabu CLI, a release walked through schedule, rollout and
// completion on real agents, the real coordinator delivering its notices
// to a webhook receiver and to an SMTP server on 127.0.0.1 — both down at
// first (HTTP 503; SMTP port closed) across a restart of the coordinator,
// then up: each notice delivered once, signed, the mail with its headers
// and the window in the reader's zone; notices and records in the
// language asked for (--lang zh-CN).
#include <gtest/gtest.h>

#include <map>

#include "coordinator/cmdb/connectors.hpp"
#include "tests/e2e/fleet.hpp"
#include "tests/support/http_receiver.hpp"
#include "tests/support/smtp_receiver.hpp"

namespace fabu::e2e {
namespace {

using fabu::testing::HttpReceiver;
using fabu::testing::SmtpReceiver;

class NotifyE2eTest : public Fleet {
 protected:
  // Restarts the coordinator with `changes` merged into its config.json.
  void Configure(const json& changes) {
    ASSERT_EQ(StopCoordinator(), 0);
    const fs::path config = CoordinatorDir() / "config.json";
    json j = json::parse(fabu::testing::ReadFile(config));
    j.merge_patch(changes);
    fabu::testing::WriteFile(config, j.dump(2));
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  }

  // The outbox messages of notice subscription `id`, oldest first.
  json Notices(const std::string& id) {
    auto r = As(viewer_, {"cmdb", "outbox", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json out = json::array();
    json messages = json::parse(r.out, nullptr, false)["messages"];
    for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
      if ((*it)["connector"] == "notify:" + id) out.push_back(*it);
    }
    return out;
  }
};

TEST_F(NotifyE2eTest, AWebhookAndAMailboxDownThenUpGetEachNoticeOnce) {
  HttpReceiver hook;
  hook.SetStatus(503, "{\"error\": \"maintenance\"}");
  std::uint16_t smtp_port = 0;
  {
    SmtpReceiver probe;  // a free port, closed again: the mail server is down
    smtp_port = probe.port();
  }
  ASSERT_NO_FATAL_FAILURE(Configure(
      {{"smtp",
        {{"url", "smtp://127.0.0.1:" + std::to_string(smtp_port)}, {"from", "fabu@example.com"}}},
       {"cmdb", {{"retry", {{"initial_seconds", 1}, {"max_seconds", 2}}}}},
       {"webhook_allow", {hook.url("/notices/")}}}));

  // A target outside webhook_allow is refused, naming the key.
  auto outside =
      As(rm_, {"notify", "add", "--events", "scheduled", "--webhook", "http://127.0.0.1:1/admin"});
  EXPECT_NE(outside.exit_code, 0);
  EXPECT_NE(outside.err.find("not allowed by webhook_allow in config.json"), std::string::npos)
      << outside.err;

  auto added = As(rm_, {"notify", "add", "--events", "scheduled,started,completed", "--webhook",
                        hook.url("/notices/"), "--secret", "n0tice-key"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, "N-1\n");
  added = As(rm_, {"notify", "add", "--events", "scheduled", "--email", "ops@example.com", "--tz",
                   "Europe/Berlin"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, "N-2\n");
  auto refused = As(viewer_, {"notify", "add", "--events", "closed", "--email", "x@example.com"});
  EXPECT_NE(refused.exit_code, 0);
  auto bad = As(rm_, {"notify", "add", "--events", "deployed", "--email", "x@example.com"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("events[0]"), std::string::npos) << bad.err;
  auto list = As(viewer_, {"notify", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json subscriptions = json::parse(list.out)["subscriptions"];
  ASSERT_EQ(subscriptions.size(), 2u) << list.out;
  EXPECT_EQ(subscriptions[0]["signed"], true);
  EXPECT_EQ(subscriptions[0].dump().find("n0tice-key"), std::string::npos);
  EXPECT_EQ(subscriptions[1]["time_zone"], "Europe/Berlin");

  AddAgents(2);
  const Package v1 = BuildAndUpload(kV1);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));  // scheduled, started, completed (deployed)

  // Both receivers are down: the notices wait in the outbox, retried.
  ASSERT_TRUE(WaitFor([&] {
    json hooks = Notices("N-1"), mails = Notices("N-2");
    return hooks.size() == 3 && mails.size() == 1 && hooks[0]["state"] == "failing" &&
           mails[0]["state"] == "failing" && mails[0]["attempts"].get<int>() >= 1;
  })) << Notices("N-1").dump(2)
      << Notices("N-2").dump(2);
  EXPECT_FALSE(Notices("N-2")[0]["last_error"].get<std::string>().empty());

  // The coordinator restarts with the notices pending: nothing is lost.
  const int port = Port();  // the agents know this one
  ASSERT_EQ(StopCoordinator(), 0);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(port));

  SmtpReceiver smtp(smtp_port);
  hook.SetStatus(200);
  auto all_delivered = [&] {
    for (const char* id : {"N-1", "N-2"}) {
      for (const auto& m : Notices(id)) {
        if (m["state"] != "delivered") return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(WaitFor(all_delivered)) << Notices("N-1").dump(2) << Notices("N-2").dump(2);

  std::map<std::string, int> accepted;
  std::map<std::string, json> bodies;
  for (const auto& request : hook.requests()) {
    EXPECT_EQ(request.headers.at("x-fabu-signature"),
              coordinator::WebhookSignature("n0tice-key", request.body));
    if (request.status != 200) continue;
    ++accepted[request.headers.at("idempotency-key")];
    json body = json::parse(request.body);
    bodies[body["event"].get<std::string>()] = body;
  }
  EXPECT_GT(hook.requests().size(), accepted.size());  // it refused some first
  ASSERT_EQ(accepted.size(), 3u);
  for (const auto& [key, count] : accepted) EXPECT_EQ(count, 1) << key;
  ASSERT_EQ(bodies.count("scheduled"), 1u);
  const std::string golive = bodies["scheduled"]["text"];
  for (const char* part :
       {"All c3m-video servers.", "2 target host(s)",
        "Automatic rollback on a failed health check.", "owner: zhang.rm", "(Asia/Shanghai)"}) {
    EXPECT_NE(golive.find(part), std::string::npos) << part << "\n" << golive;
  }
  EXPECT_NE(bodies["completed"]["subject"].get<std::string>().find("completed: deployed"),
            std::string::npos)
      << bodies["completed"].dump(2);
  EXPECT_EQ(bodies["completed"]["hosts"]["succeeded"], 2);

  auto mails = smtp.mails();
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(mails[0].from, "fabu@example.com");
  EXPECT_EQ(mails[0].recipients, std::vector<std::string>{"ops@example.com"});
  const std::string& data = mails[0].data;
  for (const char* part :
       {"From: fabu@example.com\r\n", "To: ops@example.com\r\n",
        "Subject: [fabu] Go-live notice: c3m-video", "Date: ", "Message-ID: <R-1.scheduled.",
        "Content-Type: text/plain; charset=UTF-8\r\n", "(Europe/Berlin)",
        "Automatic rollback on a failed health check."}) {
    EXPECT_NE(data.find(part), std::string::npos) << part << "\n" << data;
  }

  // Removed, N-2 gets nothing more; the audit has the subscriptions.
  auto removed = As(rm_, {"notify", "remove", "N-2"});
  EXPECT_EQ(removed.exit_code, 0) << removed.err;
  list = As(viewer_, {"notify", "list", "--json"});
  EXPECT_EQ(json::parse(list.out)["subscriptions"].size(), 1u);
  auto audit = QueryStore("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'notify.%'");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_GE(std::stoi(audit[0][0]), 6);  // 2 add, 3 queue events, 1 remove
}

// Given one subscriber whose server never answers and one whose server is
// up, the dead one's notices hold back none of the live one's and are
// given up after cmdb.retry.notice_give_up_seconds: shown as given_up in
// `fabu cmdb outbox`, audited, and an alert in the release report.
TEST_F(NotifyE2eTest, ANoticeThatCannotBeDeliveredIsGivenUpAndTheReportSaysSo) {
  HttpReceiver live, dead;
  dead.SetStatus(503, "{\"error\": \"gone\"}");
  ASSERT_NO_FATAL_FAILURE(Configure(
      {{"cmdb",
        {{"retry", {{"initial_seconds", 1}, {"max_seconds", 1}, {"notice_give_up_seconds", 2}}}}},
       {"webhook_allow", {live.url("/"), dead.url("/")}}}));
  for (const auto* receiver : {&dead, &live}) {
    auto added = As(rm_, {"notify", "add", "--events", "scheduled,started,completed", "--webhook",
                          receiver->url("/n")});
    ASSERT_EQ(added.exit_code, 0) << added.err;
  }
  AddAgents(1);
  const Package v1 = BuildAndUpload(kV1);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));
  auto settled = [&] {
    json dead_ones = Notices("N-1"), live_ones = Notices("N-2");
    if (dead_ones.size() != 3 || live_ones.size() != 3) return false;
    for (const auto& m : dead_ones) {
      if (m["state"] != "given_up") return false;
    }
    for (const auto& m : live_ones) {
      if (m["state"] != "delivered") return false;
    }
    return true;
  };
  ASSERT_TRUE(WaitFor(settled)) << Notices("N-1").dump(2) << Notices("N-2").dump(2);
  EXPECT_EQ(live.requests().size(), 3u);
  auto audit = QueryStore("SELECT COUNT(*) FROM audit_log WHERE action = 'notify.give-up'");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0][0], "3");

  auto report = As(viewer_, {"release", "export", "R-1", "--doc", "release-report"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_NE(report.out.find("## Notices"), std::string::npos) << report.out;
  EXPECT_NE(report.out.find("⚠ Notices given up (never delivered): 3"), std::string::npos)
      << report.out;
  auto zh = As(viewer_, {"release", "export", "R-1", "--doc", "release-report", "--lang", "zh-CN"});
  ASSERT_EQ(zh.exit_code, 0) << zh.err;
  EXPECT_NE(zh.out.find("未能送达而放弃的通知: 3"), std::string::npos) << zh.out;
}

// Given a webhook subscribed with --lang zh-CN next to one in the default
// language, a release rolled out on real agents should reach the first with
// its go-live notice (上线通知) in the procedure's Chinese and the second in
// English; and --lang zh-CN should turn the exported release plan (发布方案)
// and upgrade record table (升级记录表) into the procedure's terms.
TEST_F(NotifyE2eTest, NoticesAndRecordsAreInTheLanguageAskedFor) {
  HttpReceiver zh_hook, en_hook;
  ASSERT_NO_FATAL_FAILURE(
      Configure({{"cmdb", {{"retry", {{"initial_seconds", 1}, {"max_seconds", 1}}}}},
                 {"webhook_allow", {zh_hook.url("/"), en_hook.url("/")}}}));
  auto added = As(rm_, {"notify", "add", "--events", "scheduled,completed", "--webhook",
                        zh_hook.url("/zh"), "--lang", "zh-CN"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  added = As(rm_, {"notify", "add", "--events", "scheduled", "--webhook", en_hook.url("/en")});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  auto bad = As(rm_, {"notify", "add", "--events", "scheduled", "--webhook", zh_hook.url("/x"),
                      "--lang", "fr"});
  EXPECT_NE(bad.exit_code, 0);
  auto list = As(viewer_, {"notify", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json subscriptions = json::parse(list.out)["subscriptions"];
  ASSERT_EQ(subscriptions.size(), 2u) << list.out;
  EXPECT_EQ(subscriptions[0]["lang"], "zh-CN");
  EXPECT_EQ(subscriptions[1]["lang"], "en");
  auto table = As(viewer_, {"notify", "list"});
  EXPECT_NE(table.out.find("zh-CN"), std::string::npos) << table.out;

  AddAgents(2);
  const Package v1 = BuildAndUpload(kV1);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));
  ASSERT_TRUE(WaitFor([&] {
    for (const char* id : {"N-1", "N-2"}) {
      for (const auto& m : Notices(id)) {
        if (m["state"] != "delivered") return false;
      }
    }
    return Notices("N-1").size() == 2 && Notices("N-2").size() == 1;
  })) << Notices("N-1").dump(2)
      << Notices("N-2").dump(2);

  std::map<std::string, json> zh;
  for (const auto& request : zh_hook.requests()) {
    json body = json::parse(request.body);
    zh[body["event"].get<std::string>()] = body;
  }
  ASSERT_EQ(zh.count("scheduled"), 1u);
  EXPECT_EQ(zh["scheduled"]["lang"], "zh-CN");
  const std::string subject = zh["scheduled"]["subject"];
  EXPECT_NE(subject.find("上线通知：c3m-video " + std::string(kV1) + " 已排期（R-1）"),
            std::string::npos)
      << subject;
  const std::string golive = zh["scheduled"]["text"];
  for (const char* part :
       {"发布影响范围\n  All c3m-video servers.", "目标主机 2 台",
        "发布失败情况下的退回方案\n  Automatic rollback on a failed health check.",
        "发布负责人：zhang.rm", "（Asia/Shanghai）"}) {
    EXPECT_NE(golive.find(part), std::string::npos) << part << "\n" << golive;
  }
  ASSERT_EQ(zh.count("completed"), 1u);
  const std::string completed = zh["completed"]["subject"];
  EXPECT_NE(completed.find("上线结束：已部署"), std::string::npos) << completed;
  EXPECT_NE(zh["completed"]["text"].get<std::string>().find("部署中 → 已部署"), std::string::npos)
      << zh["completed"]["text"];
  ASSERT_EQ(en_hook.requests().size(), 1u);
  const json en = json::parse(en_hook.requests()[0].body);
  EXPECT_NE(en["subject"].get<std::string>().find("Go-live notice"), std::string::npos) << en;

  // The plan and the upgrade record table in the procedure's terms.
  auto plan = As(viewer_, {"release", "export", "R-1", "--lang", "zh-CN"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  for (const char* part :
       {"# 发布方案 R-1: C3M-VIDEO", "| 发布类别 | 一般发布 |", "| 状态 | 已部署 |",
        "## 2. 发布影响范围", "## 上线方案", "| 自动回退 | 否 |", "| 批准 |", "## 测试验收"}) {
    EXPECT_NE(plan.out.find(part), std::string::npos) << part << "\n" << plan.out;
  }
  EXPECT_EQ(plan.out.find("Release plan"), std::string::npos) << plan.out;
  auto plan_en = As(viewer_, {"release", "export", "R-1"});
  ASSERT_EQ(plan_en.exit_code, 0) << plan_en.err;
  EXPECT_NE(plan_en.out.find("# Release plan R-1: C3M-VIDEO"), std::string::npos) << plan_en.out;
  EXPECT_NE(plan_en.out.find("| State | Deployed |"), std::string::npos) << plan_en.out;

  auto records = As(viewer_, {"release", "export", "R-1", "--doc", "upgrade-records", "--format",
                              "md", "--lang", "zh-CN"});
  ASSERT_EQ(records.exit_code, 0) << records.err;
  for (const char* part : {"# 升级记录表 — R-1", "| 主机 | 软件包 | 原版本 | 新版本 |",
                           "| 成功 | R-1 |", "| 升级 |", "CMDB更新"}) {
    EXPECT_NE(records.out.find(part), std::string::npos) << part << "\n" << records.out;
  }
  EXPECT_EQ(records.out.find("succeeded"), std::string::npos) << records.out;
  auto csv =
      As(viewer_, {"release", "export", "R-1", "--doc", "upgrade-records", "--lang", "zh-CN"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out.rfind("主机,软件包,原版本,新版本,", 0), 0u) << csv.out;
  EXPECT_NE(csv.out.find("web-1,c3m-video,"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find(std::string(",") + kV1 + ","), std::string::npos) << csv.out;
  auto csv_en = As(viewer_, {"release", "export", "R-1", "--doc", "upgrade-records"});
  ASSERT_EQ(csv_en.exit_code, 0) << csv_en.err;
  EXPECT_EQ(csv_en.out.rfind("host,package,from,to,", 0), 0u) << csv_en.out;
  EXPECT_NE(csv_en.out.find(",succeeded,R-1,"), std::string::npos) << csv_en.out;
}

}  // namespace
}  // namespace fabu::e2e
