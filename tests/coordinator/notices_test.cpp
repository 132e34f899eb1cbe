// Release notices (coordinator/notify/notices.hpp, smtp_mail.hpp): which
// transition is which event, what the go-live notice says and in which time
// zone, the e-mail's headers, and the subscriptions and outbox in a real
// store.
#include "coordinator/notify/notices.hpp"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <atomic>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <utility>
#include <vector>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/cmdb/delivery.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/daemon/listeners.hpp"
#include "coordinator/notify/notice_connector.hpp"
#include "coordinator/notify/smtp_mail.hpp"
#include "coordinator/store/release_records.hpp"
#include "tests/support/http_receiver.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store_target.hpp"

namespace fabu::coordinator {
namespace {

namespace rel = release;
using nlohmann::json;

constexpr rel::UnixSeconds kStart = 1796000400;  // 2026-11-30T01:00:00Z

rel::Release GoLiveRelease() {
  rel::Release r;
  r.id = "R-7";
  r.owner = "zhang.rm";
  r.state = rel::ReleaseState::kScheduled;
  r.plan.title = "视频转码修复";
  r.plan.product = "c3m-video";
  r.plan.version = *protocol::Version::Parse("V1.3.0.12");
  r.plan.Section(rel::PlanSection::kScope) = "All c3m-video servers in Beijing.";
  r.plan.Section(rel::PlanSection::kRollbackPlan) = "Reinstall V1.3.0.11 on every host.";
  r.plan.Section(rel::PlanSection::kParticipants) = "wang.approver (ops), chen.tester (QA)";
  rel::GoLivePlan golive;
  golive.window.start = {kStart, "2026-11-30T01:00:00Z"};
  golive.window.end = {kStart + 4 * 3600, "2026-11-30T05:00:00Z"};
  r.plan.golive = golive;
  r.history.push_back({rel::Action::kSchedule, "zhang.rm", rel::Role::kReleaseManager, kStart - 60,
                       rel::ReleaseState::kAccepted, rel::ReleaseState::kScheduled, ""});
  return r;
}

// Given a transition adding a history entry of each action, we should map
// it to its event — and a save without a new entry to none.
TEST(NoticeEventTest, EachTransitionMapsToItsEvent) {
  const std::vector<std::pair<rel::Action, std::optional<NoticeEvent>>> table = {
      {rel::Action::kSchedule, NoticeEvent::kScheduled},
      {rel::Action::kStartRollout, NoticeEvent::kStarted},
      {rel::Action::kPause, NoticeEvent::kPaused},
      {rel::Action::kFinishRollback, NoticeEvent::kRolledBack},
      {rel::Action::kFinishRollout, NoticeEvent::kCompleted},
      {rel::Action::kFailRollout, NoticeEvent::kCompleted},
      {rel::Action::kClose, NoticeEvent::kClosed},
      {rel::Action::kApprove, std::nullopt},
      {rel::Action::kResume, std::nullopt},
      {rel::Action::kRollback, std::nullopt},
      {rel::Action::kGate, std::nullopt},
  };
  for (const auto& [action, expected] : table) {
    rel::Release before = GoLiveRelease(), after = before;
    after.history.push_back({action, "x", rel::Role::kAdmin, 1, {}, {}, ""});
    EXPECT_EQ(NoticeEventOf(before, after), expected) << rel::ActionName(action);
    EXPECT_EQ(NoticeEventOf(after, after), std::nullopt) << rel::ActionName(action);
  }
}

TEST(NoticeEventTest, NamesRoundTripAndAnUnknownNameListsTheEvents) {
  for (NoticeEvent e : AllNoticeEvents()) EXPECT_EQ(*ParseNoticeEvent(NoticeEventName(e)), e);
  auto bad = ParseNoticeEvent("deployed");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("scheduled, started"), std::string::npos);
}

// Given a scheduled release, the go-live notice should say what, when (in
// the reader's zone), the scope and host count, the rollback plan and whom
// to contact.
TEST(NoticeTextTest, TheGoLiveNoticeSaysWhatWhenScopeRollbackAndContacts) {
  NoticeFacts facts;
  facts.packages = {"c3m-video V1.3.0.12 (sha256 0123456789ab)"};
  facts.target_hosts = 12;
  auto shanghai = rel::TimeZone::Load("Asia/Shanghai");
  ASSERT_TRUE(shanghai) << shanghai.error().message();
  Notice n = ComposeNotice(NoticeEvent::kScheduled, GoLiveRelease(), facts, *shanghai);
  EXPECT_NE(n.subject.find("Go-live notice: c3m-video V1.3.0.12 scheduled (R-7)"),
            std::string::npos)
      << n.subject;
  for (const char* part :
       {"c3m-video V1.3.0.12 \"视频转码修复\"", "package c3m-video V1.3.0.12 (sha256 0123456789ab)",
        "2026-11-30 09:00 +08:00 to 2026-11-30 13:00 +08:00 (Asia/Shanghai)",
        "All c3m-video servers in Beijing.", "12 target host(s)",
        "Reinstall V1.3.0.11 on every host.", "owner: zhang.rm",
        "wang.approver (ops), chen.tester (QA)"}) {
    EXPECT_NE(n.text.find(part), std::string::npos) << part << "\n" << n.text;
  }
  auto berlin = rel::TimeZone::Load("Europe/Berlin");
  ASSERT_TRUE(berlin);
  Notice b = ComposeNotice(NoticeEvent::kStarted, GoLiveRelease(), facts, *berlin);
  EXPECT_NE(b.text.find("2026-11-30 02:00 +01:00 to 2026-11-30 06:00 +01:00 (Europe/Berlin)"),
            std::string::npos)
      << b.text;
  EXPECT_NE(b.subject.find("rollout started"), std::string::npos) << b.subject;
}

TEST(NoticeTextTest, ACompletedNoticeSaysTheOutcomeStateAndCounts) {
  rel::Release r = GoLiveRelease();
  r.state = rel::ReleaseState::kFailed;
  r.history.push_back({rel::Action::kFailRollout, "fabu-coordinator", rel::Role::kAdmin,
                       kStart + 600, rel::ReleaseState::kDeploying, rel::ReleaseState::kFailed,
                       "2 hosts failed (threshold 0)"});
  NoticeFacts facts;
  facts.target_hosts = 5;
  facts.succeeded = 3;
  facts.failed = 2;
  Notice n = ComposeNotice(NoticeEvent::kCompleted, r, facts, rel::TimeZone::Utc());
  EXPECT_NE(n.subject.find("rollout completed: failed"), std::string::npos) << n.subject;
  EXPECT_NE(n.text.find("deploying -> failed by fabu-coordinator"), std::string::npos) << n.text;
  EXPECT_NE(n.text.find("5 target(s): 3 succeeded, 2 failed, 0 unfinished"), std::string::npos)
      << n.text;
  EXPECT_NE(n.text.find("2 hosts failed (threshold 0)"), std::string::npos) << n.text;
}

// Given a subscription in zh-CN, the go-live notice (上线通知) should say the
// same things in the procedure's words: what, the window in the reader's
// zone, the scope (发布影响范围) and hosts, the rollback plan and whom to
// contact; and the later notices their state and close code in its terms.
TEST(NoticeTextTest, InChineseTheNoticesUseTheProceduresTerms) {
  NoticeFacts facts;
  facts.packages = {"c3m-video V1.3.0.12 (sha256 0123456789ab)"};
  facts.target_hosts = 12;
  auto shanghai = rel::TimeZone::Load("Asia/Shanghai");
  ASSERT_TRUE(shanghai);
  Notice n =
      ComposeNotice(NoticeEvent::kScheduled, GoLiveRelease(), facts, *shanghai, rel::Lang::kZhCn);
  EXPECT_EQ(n.subject, "[fabu] 上线通知：c3m-video V1.3.0.12 已排期（R-7）");
  for (const char* part :
       {"发布 R-7 已排期上线。", "发布内容\n  c3m-video V1.3.0.12《视频转码修复》",
        "  软件包 c3m-video V1.3.0.12 (sha256 0123456789ab)",
        "发布窗口\n  2026-11-30 09:00 +08:00 至 2026-11-30 13:00 +08:00（Asia/Shanghai）",
        "发布影响范围\n  All c3m-video servers in Beijing.", "目标主机 12 台",
        "发布失败情况下的退回方案\n  Reinstall V1.3.0.11 on every host.",
        "联系人\n  发布负责人：zhang.rm", "参与部门及人员：\n  wang.approver (ops)",
        "fabu 发布通知"}) {
    EXPECT_NE(n.text.find(part), std::string::npos) << part << "\n" << n.text;
  }
  for (const char* english : {"What is released", "Impact scope", "Rollback plan", "owner:"}) {
    EXPECT_EQ(n.text.find(english), std::string::npos) << english << "\n" << n.text;
  }

  rel::Release r = GoLiveRelease();
  r.state = rel::ReleaseState::kRolledBack;
  r.history.push_back({rel::Action::kFinishRollback, "fabu-coordinator", rel::Role::kSystem,
                       kStart + 600, rel::ReleaseState::kRollingBack,
                       rel::ReleaseState::kRolledBack, ""});
  facts.succeeded = 10;
  facts.failed = 2;
  facts.rolled_back = 10;
  Notice back =
      ComposeNotice(NoticeEvent::kRolledBack, r, facts, rel::TimeZone::Utc(), rel::Lang::kZhCn);
  EXPECT_EQ(back.subject, "[fabu] c3m-video V1.3.0.12 已回退（R-7）");
  EXPECT_NE(back.text.find("回退中 → 已回退，操作人 fabu-coordinator"), std::string::npos)
      << back.text;
  EXPECT_NE(back.text.find("目标主机 12 台：成功 10，失败 2，未完成 0，已回退 10"),
            std::string::npos)
      << back.text;
  EXPECT_EQ(back.text.find("rolled_back"), std::string::npos) << back.text;

  r.state = rel::ReleaseState::kClosed;
  r.close_code = rel::CloseCode::kRolledBack;
  r.history.push_back({rel::Action::kClose, "zhang.rm", rel::Role::kReleaseManager, kStart + 900,
                       rel::ReleaseState::kRolledBack, rel::ReleaseState::kClosed, ""});
  Notice closed =
      ComposeNotice(NoticeEvent::kClosed, r, facts, rel::TimeZone::Utc(), rel::Lang::kZhCn);
  EXPECT_NE(closed.subject.find("已关闭（关闭代码：已回退）"), std::string::npos) << closed.subject;
  // English stays as it was.
  Notice en = ComposeNotice(NoticeEvent::kClosed, r, facts, rel::TimeZone::Utc());
  EXPECT_NE(en.subject.find("closed (rolled_back)"), std::string::npos) << en.subject;
}

TEST(SmtpMailTest, TheMessageHasItsHeadersAndCrlfLines) {
  MailMessage m;
  m.from = "fabu@example.com";
  m.to = "ops@example.com";
  m.subject = "[fabu] 视频 scheduled";
  m.text = "line one\n.dot line\n";
  m.message_id = "R-7.scheduled.9.N-1@example.com";
  m.date = kStart;
  const std::string text = FormatMail(m);
  EXPECT_NE(text.find("From: fabu@example.com\r\n"), std::string::npos);
  EXPECT_NE(text.find("To: ops@example.com\r\n"), std::string::npos);
  EXPECT_NE(text.find("Subject: =?UTF-8?B?"), std::string::npos) << text;
  EXPECT_NE(text.find("Date: Mon, 30 Nov 2026 01:00:00 +0000\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Message-ID: <R-7.scheduled.9.N-1@example.com>\r\n"), std::string::npos);
  EXPECT_NE(text.find("Content-Type: text/plain; charset=UTF-8\r\n"), std::string::npos);
  EXPECT_NE(text.find("\r\n\r\nline one\r\n.dot line\r\n"), std::string::npos) << text;
}

TEST(SmtpMailTest, TheConfigNamesTheWrongField) {
  auto bad = SmtpConfig::FromJson({{"url", "http://mail"}, {"from", "a@b"}}, "smtp");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("smtp.url"), std::string::npos);
  auto no_pw =
      SmtpConfig::FromJson({{"url", "smtp://m"}, {"from", "a@b"}, {"username", "u"}}, "smtp");
  ASSERT_FALSE(no_pw);
  EXPECT_NE(no_pw.error().message().find("smtp.password_file"), std::string::npos);
  auto ok = SmtpConfig::FromJson(
      {{"url", "smtp://127.0.0.1:2525"}, {"from", "fabu@example.com"}, {"starttls", true}}, "smtp");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_TRUE(ok->starttls);
}

class NoticeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Create(fabu::testing::TestStore(dir_ / "coordinator.db"));
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
    SubscribeListeners(store_->events());
  }
  template <typename T, typename F>
  Result<T> Write(F&& f) {
    return store_->Write(origin_, [&](Transaction& tx) -> Result<T> { return f(tx); });
  }
  std::vector<OutboxMessage> Outbox() {
    return *store_->Read([&](soci::session& sql) -> Result<std::vector<OutboxMessage>> {
      return ListOutbox(sql, {});
    });
  }
  NoticeSubscription Subscription(std::vector<NoticeEvent> events, std::string channel,
                                  std::string target) {
    NoticeSubscription s;
    s.events = std::move(events);
    s.channel = std::move(channel);
    s.target = std::move(target);
    s.time_zone = "Asia/Shanghai";
    return s;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  AuditOrigin origin_{"test", "admin", "req", "local"};
  SecretBox secrets_ = SecretBox::FromKey({1, 2, 3, 4, 5, 6, 7, 8});
};

// A webhook's secret is stored sealed, bound to its subscription, and opens
// only with the key and for the row it was sealed for; secrets an older
// coordinator stored in clear are sealed by the start-up migration.
TEST_F(NoticeStoreTest, WebhookSecretsAreStoredSealed) {
  auto s = Subscription({NoticeEvent::kScheduled}, "webhook", "http://127.0.0.1:1/x");
  s.secret = "hunter2-hmac-key";
  auto added = Write<NoticeSubscription>(
      [&](Transaction& tx) { return AddSubscription(tx, s, "a", secrets_); });
  ASSERT_TRUE(added) << added.error().message();
  EXPECT_TRUE(SecretBox::IsSealed(added->secret)) << added->secret;
  auto stored = store_->Read([&](soci::session& sql) { return FindSubscription(sql, added->id); });
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->secret, added->secret);
  EXPECT_EQ(stored->secret.find("hunter2"), std::string::npos);
  EXPECT_EQ(secrets_.Open(stored->secret, SubscriptionSecretContext("N-1")).value_or(""),
            "hunter2-hmac-key");
  EXPECT_FALSE(secrets_.Open(stored->secret, SubscriptionSecretContext("N-2")));
  EXPECT_FALSE(SecretBox::FromKey({9}).Open(stored->secret, SubscriptionSecretContext("N-1")));
  std::string altered = stored->secret;
  altered.back() = altered.back() == '0' ? '1' : '0';
  EXPECT_FALSE(secrets_.Open(altered, SubscriptionSecretContext("N-1")));

  // As an older coordinator left it: in clear.
  ASSERT_TRUE(Write<void>([&](Transaction& tx) -> Result<void> {
    tx.sql() << "UPDATE notify_subscriptions SET secret = 'old-clear-key' WHERE id = 'N-1'";
    return {};
  }));
  EXPECT_TRUE(store_
                  ->Read([](soci::session& sql) -> Result<bool> {
                    return !AnySealedSubscriptionSecret(sql);
                  })
                  .value());
  auto sealed =
      Write<int>([&](Transaction& tx) { return SealClearSubscriptionSecrets(tx, secrets_); });
  ASSERT_TRUE(sealed) << sealed.error().message();
  EXPECT_EQ(*sealed, 1);
  stored = store_->Read([&](soci::session& sql) { return FindSubscription(sql, "N-1"); });
  EXPECT_EQ(secrets_.Open(stored->secret, SubscriptionSecretContext("N-1")).value_or(""),
            "old-clear-key");
  EXPECT_EQ(
      *Write<int>([&](Transaction& tx) { return SealClearSubscriptionSecrets(tx, secrets_); }), 0);
}

TEST_F(NoticeStoreTest, ASubscriptionIsCheckedFieldByField) {
  auto bad_url = Write<NoticeSubscription>([&](Transaction& tx) {
    return AddSubscription(tx, Subscription({NoticeEvent::kScheduled}, "webhook", "ftp://x"), "a",
                           secrets_);
  });
  ASSERT_FALSE(bad_url);
  EXPECT_NE(bad_url.error().message().find("webhook:"), std::string::npos);
  auto bad_mail = Write<NoticeSubscription>([&](Transaction& tx) {
    return AddSubscription(
        tx, Subscription({NoticeEvent::kScheduled}, "email", "ops@x\r\nBcc: y@z"), "a", secrets_);
  });
  ASSERT_FALSE(bad_mail);
  EXPECT_NE(bad_mail.error().message().find("email:"), std::string::npos);
  auto no_events = Write<NoticeSubscription>([&](Transaction& tx) {
    return AddSubscription(tx, Subscription({}, "email", "o@x"), "a", secrets_);
  });
  ASSERT_FALSE(no_events);
  EXPECT_NE(no_events.error().message().find("events:"), std::string::npos);
  auto s = Subscription({NoticeEvent::kScheduled}, "email", "o@x");
  s.time_zone = "Mars/Olympus";
  auto bad_zone = Write<NoticeSubscription>(
      [&](Transaction& tx) { return AddSubscription(tx, s, "a", secrets_); });
  ASSERT_FALSE(bad_zone);
  EXPECT_NE(bad_zone.error().message().find("time_zone"), std::string::npos);
}

// Given a subscription in zh-CN and one without a language, each should be
// stored and listed with its language (English by default), and each
// queued notice written in its subscription's.
TEST_F(NoticeStoreTest, EachSubscriptionKeepsItsLanguageAndGetsItsNoticesInIt) {
  auto zh = Subscription({NoticeEvent::kScheduled}, "webhook", "http://127.0.0.1:1/zh");
  zh.lang = rel::Lang::kZhCn;
  ASSERT_TRUE(Write<NoticeSubscription>(
      [&](Transaction& tx) { return AddSubscription(tx, zh, "zhang", secrets_); }));
  ASSERT_TRUE(Write<NoticeSubscription>([&](Transaction& tx) {
    return AddSubscription(
        tx, Subscription({NoticeEvent::kScheduled}, "webhook", "http://127.0.0.1:1/en"), "zhang",
        secrets_);
  }));
  auto listed = store_->Read([&](soci::session& sql) -> Result<std::vector<NoticeSubscription>> {
    return ListSubscriptions(sql);
  });
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].lang, rel::Lang::kZhCn);
  EXPECT_EQ((*listed)[0].ToJson()["lang"], "zh-CN");
  EXPECT_EQ((*listed)[1].ToJson()["lang"], "en");

  rel::Release after = GoLiveRelease(), before = after;
  before.history.clear();
  before.state = rel::ReleaseState::kAccepted;
  ASSERT_TRUE(Write<void>([&](Transaction& tx) -> Result<void> {
    SaveRelease(tx.sql(), after);
    EnqueueNotices(tx, before, after);
    return {};
  }));
  std::map<std::string, json> payloads;
  for (const OutboxMessage& m : Outbox()) payloads[m.connector] = json::parse(m.payload);
  ASSERT_EQ(payloads.size(), 2u);
  EXPECT_EQ(payloads["notify:N-1"]["lang"], "zh-CN");
  EXPECT_NE(payloads["notify:N-1"]["subject"].get<std::string>().find("上线通知"),
            std::string::npos);
  EXPECT_NE(payloads["notify:N-1"]["text"].get<std::string>().find("发布影响范围"),
            std::string::npos);
  EXPECT_EQ(payloads["notify:N-1"]["event"], "scheduled");  // the keys stay the API's
  EXPECT_EQ(payloads["notify:N-2"]["lang"], "en");
  EXPECT_NE(payloads["notify:N-2"]["subject"].get<std::string>().find("Go-live notice"),
            std::string::npos);
}

// Given two subscriptions, one to scheduled, a schedule transition should
// queue one notice for it only, once however often it is enqueued, and
// leave the release's CMDB confirmation alone; removing the subscription
// waives it.
TEST_F(NoticeStoreTest, AScheduleQueuesOneNoticePerSubscriberOnceOutsideTheCmdbConfirmation) {
  auto hook = Write<NoticeSubscription>([&](Transaction& tx) {
    return AddSubscription(
        tx, Subscription({NoticeEvent::kScheduled}, "webhook", "http://127.0.0.1:1/x"), "zhang",
        secrets_);
  });
  ASSERT_TRUE(hook) << hook.error().message();
  EXPECT_EQ(hook->id, "N-1");
  ASSERT_TRUE(Write<NoticeSubscription>([&](Transaction& tx) {
    return AddSubscription(tx, Subscription({NoticeEvent::kClosed}, "email", "o@x"), "zhang",
                           secrets_);
  }));
  rel::Release after = GoLiveRelease(), before = after;
  before.history.clear();
  before.state = rel::ReleaseState::kAccepted;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(Write<void>([&](Transaction& tx) -> Result<void> {
      SaveRelease(tx.sql(), after);
      EnqueueNotices(tx, before, after);
      return {};
    }));
  }
  auto outbox = Outbox();
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].connector, "notify:N-1");
  EXPECT_EQ(outbox[0].idempotency_key, "R-7/scheduled/1");
  json payload = json::parse(outbox[0].payload);
  EXPECT_EQ(payload["event"], "scheduled");
  EXPECT_NE(payload["text"].get<std::string>().find("+08:00"), std::string::npos);
  auto confirmation = store_->Read(
      [&](soci::session& sql) -> Result<CmdbConfirmation> { return ConfirmationOf(sql, "R-7"); });
  EXPECT_EQ(confirmation->pending, 0);
  EXPECT_TRUE(confirmation->confirmed);

  ASSERT_TRUE(Write<void>([&](Transaction& tx) { return RemoveSubscription(tx, "N-1", "zhang"); }));
  EXPECT_EQ(Outbox()[0].state, kOutboxWaived);
  auto again = Write<void>([&](Transaction& tx) { return RemoveSubscription(tx, "N-1", "zhang"); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
}

// Given a subscriber whose server is down and one whose server is up, the
// down one's notices should hold back none of the others (not even its own
// later one), and be given up once they are older than notice_give_up,
// audited and shown as given_up.
TEST_F(NoticeStoreTest, AFailingNoticeHoldsBackNoOtherAndIsGivenUpAfterItsTime) {
  testing::HttpReceiver down, up;
  down.SetStatus(503, "subscriber down");
  for (const auto* receiver : {&down, &up}) {
    ASSERT_TRUE(Write<NoticeSubscription>([&](Transaction& tx) {
      return AddSubscription(
          tx, Subscription({NoticeEvent::kScheduled}, "webhook", receiver->url("/n")), "zhang",
          secrets_);
    }));
  }
  const UnixSeconds queued = WallClock().Seconds();
  ASSERT_TRUE(Write<void>([&](Transaction& tx) -> Result<void> {
    for (const auto& [connector, key] :
         std::vector<std::pair<std::string, std::string>>{{"notify:N-1", "R-7/scheduled/1"},
                                                          {"notify:N-1", "R-7/started/2"},
                                                          {"notify:N-2", "R-7/started/2"}}) {
      const json payload = {{"event", key.substr(4, key.rfind('/') - 4)}, {"release", "R-7"}};
      EnqueueOutboxMessage(tx, connector, key, "R-7", payload.dump());
    }
    return {};
  }));
  auto notices = MakeNoticeConnector(*store_, SmtpConfig{}, dir_.path(), secrets_);
  ASSERT_TRUE(notices) << notices.error().message();
  std::vector<std::unique_ptr<Connector>> connectors;
  connectors.push_back(std::move(*notices));
  const RetryPolicy policy{std::chrono::seconds(10), std::chrono::seconds(40),
                           std::chrono::seconds(3600)};
  std::mt19937_64 random(7);
  std::atomic<bool> stop{false};
  UnixSeconds now = queued + 1;

  auto pass = DeliverDue(
      *store_, connectors, policy, [&] { return now; }, random, stop);
  ASSERT_TRUE(pass) << pass.error().message();
  EXPECT_EQ(pass->delivered, 1u);
  EXPECT_EQ(pass->failed, 2u);  // both of N-1 tried; neither held back the other or N-2
  EXPECT_EQ(up.requests().size(), 1u);
  EXPECT_EQ(down.requests().size(), 2u);

  now = queued + 3600 + 60;
  pass = DeliverDue(
      *store_, connectors, policy, [&] { return now; }, random, stop);
  ASSERT_TRUE(pass) << pass.error().message();
  EXPECT_EQ(pass->given_up, 2u);
  EXPECT_FALSE(pass->next_due);  // nothing left to retry
  int given_up = 0;
  for (const OutboxMessage& m : Outbox()) {
    if (m.connector == "notify:N-1") {
      EXPECT_EQ(m.state, kOutboxGivenUp);
      EXPECT_EQ(m.attempts, 2);
      EXPECT_NE(m.last_error.find("503"), std::string::npos) << m.last_error;
      ++given_up;
    } else {
      EXPECT_EQ(m.state, kOutboxDelivered);
    }
  }
  EXPECT_EQ(given_up, 2);
  auto audited = store_->Read([](soci::session& sql) -> Result<int> {
    int n = 0;
    sql << "SELECT COUNT(*) FROM audit_log WHERE action = 'notify.give-up'", soci::into(n);
    return n;
  });
  EXPECT_EQ(audited.value_or(-1), 2);
  // Once given up, a notice is not tried again.
  now += 3600;
  ASSERT_TRUE(DeliverDue(
      *store_, connectors, policy, [&] { return now; }, random, stop));
  EXPECT_EQ(down.requests().size(), 4u);
}

}  // namespace
}  // namespace fabu::coordinator
