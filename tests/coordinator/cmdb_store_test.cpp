// The CMDB in a real store: upgrade records once per deployment, the outbox
// written in the same transaction, baselines, the confirmation a close
// needs, waivers, and delivery through real connectors to a local receiver
// (coordinator/cmdb/).
#include <gtest/gtest.h>
#include <soci/soci.h>

#include <map>
#include <nlohmann/json.hpp>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/cmdb/connectors.hpp"
#include "coordinator/cmdb/delivery.hpp"
#include "coordinator/common/wakeup_hub.hpp"
#include "coordinator/daemon/listeners.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "tests/support/http_receiver.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store_target.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
using protocol::Step;

class CmdbStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Create(fabu::testing::TestStore(dir_ / "coordinator.db"));
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
    SubscribeListeners(store_->events());
    ASSERT_TRUE(Write([&](Transaction& tx) {
      for (const char* name : {"web-1", "web-2"}) {
        std::string n = name, credential = std::string("cred-") + name;
        tx.sql() << "INSERT INTO hosts (name, credential_sha256, labels, inventory, "
                    "agent_version, enrolled, last_seen, removed, removed_at, removed_by) VALUES "
                    "(:n, :c, '{}', '{}', '', '', 0, 0, '', '')",
            soci::use(n), soci::use(credential);
      }
      SyncConnectors(tx, {{"hook", "webhook"}, {"itop", "itop"}});
    }));
  }

  template <typename F>
  bool Write(F&& f) {
    auto done = store_->Write(origin_, [&](Transaction& tx) -> Result<void> {
      f(tx);
      return {};
    });
    EXPECT_TRUE(done) << done.error().message();
    return done.has_value();
  }

  template <typename T, typename F>
  T Read(F&& f) {
    auto r = store_->Read([&](soci::session& sql) -> Result<T> { return f(sql); });
    EXPECT_TRUE(r) << r.error().message();
    return *r;
  }

  // The agent reports `app` at `version` on `host`.
  void Inventory(const std::string& host, const std::string& version) {
    protocol::Inventory inventory;
    inventory.agent_version = "0.1.0";
    inventory.apps.push_back({"c3m-video", version, {version}});
    Write([&](Transaction& tx) { ASSERT_TRUE(StoreInventory(tx, host, inventory, 50)); });
  }

  // A production release R-1 started by zhang.rm, deployed to web-1 and web-2.
  std::vector<DeploymentRecord> StartProduction() {
    std::vector<DeploymentRecord> made;
    Write([&](Transaction& tx) {
      release::Release r;
      r.id = "R-1";
      r.history.push_back({release::Action::kStartRollout, "zhang.rm",
                           release::Role::kReleaseManager, 90, release::ReleaseState::kScheduled,
                           release::ReleaseState::kDeploying, ""});
      std::string record = release::ReleaseToJson(r).dump();
      tx.sql() << "INSERT INTO releases (id, seq, title, product, version, category, state, "
                  "close_code, owner, created, updated, record) VALUES ('R-1', 1, '', "
                  "'c3m-video', 'V1.0.0.2', 'minor', 'deploying', '', 'zhang.rm', '', '', :r)",
          soci::use(record);
      StoredPackage package;
      package.id = std::string(64, 'b');
      package.name = "c3m-video";
      package.version = "V1.0.0.2";
      made = CreateDeployments(tx, r, package, std::vector<std::string>{"web-1", "web-2"},
                               kProductionEnvironment, 100);
    });
    return made;
  }

  void Report(const DeploymentRecord& d, std::vector<Step> steps) {
    protocol::EventBatch batch;
    std::uint64_t sequence = 0;
    for (Step step : steps) {
      protocol::DeploymentEvent e;
      e.deployment = d.id;
      e.sequence = ++sequence;
      e.step = step;
      if (step == Step::kFailed) e.failed_step = Step::kHealthChecking;
      batch.events.push_back(e);
    }
    Write([&](Transaction& tx) {
      Wakeups wakeups;
      ASSERT_TRUE(StoreEvents(tx, d.host, batch, 200, {}, wakeups));
    });
  }

  std::vector<UpgradeRecord> Records(const std::string& release = "R-1") {
    return Read<std::vector<UpgradeRecord>>([&](soci::session& sql) {
      UpgradeFilter filter;
      filter.release_id = release;
      return ListUpgradeRecords(sql, filter);
    });
  }

  std::vector<OutboxMessage> Outbox() {
    return Read<std::vector<OutboxMessage>>(
        [&](soci::session& sql) { return ListOutbox(sql, OutboxFilter{}); });
  }

  CmdbConfirmation Confirmation() {
    return Read<CmdbConfirmation>([&](soci::session& sql) { return ConfirmationOf(sql, "R-1"); });
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  WakeupHub hub_;
  AuditOrigin origin_{"test", "admin", "req", "local"};
};

TEST_F(CmdbStoreTest, AProductionDeploymentEndingRecordsItsUpgradeAndQueuesOneMessagePerConnector) {
  Inventory("web-1", "V1.0.0.1");  // before the deployment is made
  auto made = StartProduction();
  ASSERT_EQ(made.size(), 2u);
  Inventory("web-1", "V1.0.0.2");  // after: must not be taken as "from"
  Report(made[0], {Step::kAssigned, Step::kDownloading, Step::kSucceeded});

  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  const UpgradeRecord& r = records[0];
  EXPECT_EQ(r.host, "web-1");
  EXPECT_EQ(r.package, "c3m-video");
  EXPECT_EQ(r.from_version, "V1.0.0.1");
  EXPECT_EQ(r.from_source, "inventory");
  EXPECT_EQ(r.to_version, "V1.0.0.2");
  EXPECT_EQ(r.result, DeploymentResult::kSucceeded);
  EXPECT_EQ(r.operator_name, "zhang.rm");
  EXPECT_EQ(r.kind, "install");
  EXPECT_EQ(r.started, 200);
  EXPECT_EQ(r.finished, 200);

  auto outbox = Outbox();
  ASSERT_EQ(outbox.size(), 2u);
  for (const OutboxMessage& m : outbox) {
    EXPECT_EQ(m.idempotency_key, "R-1/web-1/c3m-video/V1.0.0.2/install.succeeded");
    EXPECT_EQ(m.state, kOutboxPending);
    json payload = json::parse(m.payload);
    EXPECT_EQ(payload["installed_version"], "V1.0.0.2");
    EXPECT_EQ(payload["from_version"], "V1.0.0.1");
  }
  // The same final report again records nothing more.
  Report(made[0], {Step::kAssigned, Step::kDownloading, Step::kSucceeded});
  EXPECT_EQ(Records().size(), 1u);
  EXPECT_EQ(Outbox().size(), 2u);

  // web-2 times out; it never reported anything, so its "from" is unknown.
  ASSERT_TRUE(SweepDeployments(*store_, 100 + kDefaultHostTimeoutSeconds, {}, hub_));
  records = Records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].host, "web-2");
  EXPECT_EQ(records[1].result, DeploymentResult::kTimeout);
  // It never reported an inventory: its version before is not known, and says so.
  EXPECT_EQ(records[1].from_source, "unknown");
  EXPECT_EQ(records[1].from_version, "");
  EXPECT_EQ(json::parse(Outbox().front().payload)["installed_version"], "");
}

// Given two hosts' final reports written in one unit of work (as the agent
// API batches them), each deployment should get its own record (ids in
// order), one message per connector, and a "cmdb.record" entry on behalf of
// the request that reported it.
TEST_F(CmdbStoreTest, EndsWrittenTogetherEachGetTheirRecordMessagesAndEntry) {
  auto made = StartProduction();
  ASSERT_EQ(made.size(), 2u);
  std::vector<EventPost> posts;
  for (const DeploymentRecord& d : made) {
    protocol::EventBatch batch;
    std::uint64_t sequence = 0;
    for (Step step : {Step::kAssigned, Step::kDownloading, Step::kSucceeded}) {
      protocol::DeploymentEvent e;
      e.deployment = d.id;
      e.sequence = ++sequence;
      e.step = step;
      batch.events.push_back(e);
    }
    posts.push_back({d.host, batch, {"host:" + d.host, "agent", "req-" + d.host, "local"}});
  }
  Write([&](Transaction& tx) {
    Wakeups wakeups;
    for (const auto& answer : StoreEventPosts(tx, posts, 200, {}, wakeups)) {
      ASSERT_TRUE(answer) << answer.error().message();
    }
  });
  auto records = Records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].id, 1);
  EXPECT_EQ(records[0].host, "web-1");
  EXPECT_EQ(records[1].id, 2);
  EXPECT_EQ(records[1].host, "web-2");
  for (const UpgradeRecord& r : records) {
    EXPECT_EQ(r.result, DeploymentResult::kSucceeded);
    EXPECT_EQ(r.operator_name, "zhang.rm");
    EXPECT_EQ(r.started, 200);
  }
  auto outbox = Outbox();
  ASSERT_EQ(outbox.size(), 4u);
  std::map<std::string, int> per_key;
  for (const OutboxMessage& m : outbox) ++per_key[m.idempotency_key];
  EXPECT_EQ(per_key,
            (std::map<std::string, int>{{"R-1/web-1/c3m-video/V1.0.0.2/install.succeeded", 2},
                                        {"R-1/web-2/c3m-video/V1.0.0.2/install.succeeded", 2}}));
  auto entries = Read<std::vector<std::string>>([&](soci::session& sql) {
    std::vector<std::string> out;
    soci::rowset<soci::row> rows =
        (sql.prepare << "SELECT actor, object_id, detail FROM audit_log WHERE action = "
                        "'cmdb.record' ORDER BY seq");
    for (const soci::row& row : rows) {
      out.push_back(row.get<std::string>(0) + " " + row.get<std::string>(1) + " " +
                    std::to_string(json::parse(row.get<std::string>(2)).at("queued").get<int>()));
    }
    return out;
  });
  EXPECT_EQ(entries, (std::vector<std::string>{"host:web-1 1 2", "host:web-2 2 2"}));
}

TEST_F(CmdbStoreTest, TheBaselineBeforeTheRolloutIsWhereFromComesFrom) {
  Inventory("web-1", "V1.0.0.0");
  Write([&](Transaction& tx) {
    auto taken = TakeBaseline(tx, "R-1", kBaselineBefore, {"web-1", "web-2"}, 95);
    ASSERT_TRUE(taken);
    EXPECT_EQ(*taken, 2u);
    // A second call (a resumed engine) keeps the first snapshot.
    EXPECT_EQ(*TakeBaseline(tx, "R-1", kBaselineBefore, {"web-1"}, 96), 0u);
    EXPECT_FALSE(TakeBaseline(tx, "R-1", "during", {"web-1"}, 96));
  });
  auto baseline =
      Read<std::vector<BaselineRow>>([&](soci::session& sql) { return ListBaseline(sql, "R-1"); });
  ASSERT_EQ(baseline.size(), 2u);
  EXPECT_EQ(baseline[0].host, "web-1");
  EXPECT_EQ(baseline[0].version, "V1.0.0.0");
  EXPECT_EQ(baseline[1].host, "web-2");
  EXPECT_EQ(baseline[1].app, "");  // no apps: the host is in the snapshot all the same

  auto made = StartProduction();
  Report(made[0], {Step::kAssigned, Step::kFailed, Step::kRollingBack, Step::kRolledBack});
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].from_version, "V1.0.0.0");
  EXPECT_EQ(records[0].from_source, "baseline");
  EXPECT_EQ(records[0].result, DeploymentResult::kRolledBack);
  EXPECT_EQ(records[0].ResultingVersion(), "V1.0.0.0");
  EXPECT_EQ(records[0].IdempotencyKey(), "R-1/web-1/c3m-video/V1.0.0.2/install.rolled_back");
}

TEST_F(CmdbStoreTest, TestDeploymentsAreNotUpgradeRecords) {
  Write([&](Transaction& tx) {
    release::Release r;
    r.id = "R-2";
    StoredPackage package;
    package.id = std::string(64, 'c');
    package.name = "c3m-video";
    package.version = "V1.0.0.3";
    auto made =
        CreateDeployments(tx, r, package, std::vector<std::string>{"web-1"}, kTestEnvironment, 100);
    ASSERT_EQ(made.size(), 1u);
  });
  ASSERT_TRUE(SweepDeployments(*store_, 100 + kDefaultHostTimeoutSeconds, {}, hub_));
  EXPECT_TRUE(Records("R-2").empty());
  EXPECT_TRUE(Outbox().empty());
}

TEST_F(CmdbStoreTest, ConfirmationNeedsEveryDeliveryDeliveredOrWaivedByAnApprover) {
  auto made = StartProduction();
  Report(made[0], {Step::kAssigned, Step::kSucceeded});
  Report(made[1], {Step::kAssigned, Step::kSucceeded});
  CmdbConfirmation c = Confirmation();
  EXPECT_EQ(c.records, 2);
  EXPECT_EQ(c.pending, 4);
  EXPECT_FALSE(c.confirmed);

  auto outbox = Outbox();
  Write([&](Transaction& tx) {
    MarkDelivered(tx, outbox[0].id, "2026-12-01T01:00:00Z");
    MarkFailed(tx, outbox[1].id, "HTTP 503", 500);
  });
  c = Confirmation();
  EXPECT_EQ(c.delivered, 1);
  EXPECT_EQ(c.failing, 1);
  EXPECT_EQ(c.pending, 2);
  EXPECT_FALSE(c.confirmed);

  auto refused = store_->Write(origin_, [&](Transaction& tx) {
    return WaiveDeliveries(tx, "R-1", {"zhang.rm", release::Role::kReleaseManager}, "iTop is gone");
  });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermissionDenied);
  auto no_reason = store_->Write(origin_, [&](Transaction& tx) {
    return WaiveDeliveries(tx, "R-1", {"wang.approver", release::Role::kApprover}, " ");
  });
  ASSERT_FALSE(no_reason);
  EXPECT_EQ(no_reason.error().code(), ErrorCode::kInvalidArgument);

  auto waived = store_->Write(origin_, [&](Transaction& tx) {
    return WaiveDeliveries(tx, "R-1", {"wang.approver", release::Role::kApprover},
                           "iTop is being migrated; updated by hand (CHG-2026-0500)");
  });
  ASSERT_TRUE(waived) << waived.error().message();
  EXPECT_EQ(*waived, 3);
  c = Confirmation();
  EXPECT_EQ(c.waived, 3);
  EXPECT_EQ(c.delivered, 1);
  EXPECT_TRUE(c.confirmed);
  auto again = store_->Write(origin_, [&](Transaction& tx) {
    return WaiveDeliveries(tx, "R-1", {"wang.approver", release::Role::kApprover}, "again");
  });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kFailedPrecondition);
}

TEST(RetryDelayTest, DoublesFromTheInitialDelayUpToTheCapWithJitterInTheUpperHalf) {
  const RetryPolicy policy{std::chrono::seconds(5), std::chrono::seconds(60)};
  EXPECT_EQ(RetryDelaySeconds(policy, 1, 1.0), 5);
  EXPECT_EQ(RetryDelaySeconds(policy, 2, 1.0), 10);
  EXPECT_EQ(RetryDelaySeconds(policy, 3, 1.0), 20);
  EXPECT_EQ(RetryDelaySeconds(policy, 5, 1.0), 60);
  EXPECT_EQ(RetryDelaySeconds(policy, 500, 1.0), 60);
  EXPECT_EQ(RetryDelaySeconds(policy, 5, 0.0), 30);
  EXPECT_EQ(RetryDelaySeconds({std::chrono::seconds(1), std::chrono::seconds(1)}, 1, 0.0), 1);
}

TEST_F(CmdbStoreTest, TheWebhookConnectorRetriesUntilTheReceiverTakesItInOrder) {
  testing::HttpReceiver receiver;
  receiver.SetStatus(503, "down for maintenance");
  CmdbConfig config;
  ConnectorConfig hook;
  hook.name = "hook";
  hook.type = "webhook";
  hook.url = receiver.url("/fabu");
  hook.secret = "s3cret";
  config.connectors.push_back(hook);
  auto connectors = MakeConnectors(config, dir_.path());
  ASSERT_TRUE(connectors) << connectors.error().message();
  Write([&](Transaction& tx) { SyncConnectors(tx, {{"hook", "webhook"}}); });

  auto made = StartProduction();
  Report(made[0], {Step::kAssigned, Step::kSucceeded});
  Report(made[1], {Step::kAssigned, Step::kSucceeded});
  ASSERT_EQ(Outbox().size(), 2u);

  UnixSeconds now = 1000;
  std::mt19937_64 random(7);
  std::atomic<bool> stop{false};
  const RetryPolicy policy{std::chrono::seconds(10), std::chrono::seconds(40)};
  auto pass = DeliverDue(
      *store_, *connectors, policy, [&] { return now; }, random, stop);
  ASSERT_TRUE(pass) << pass.error().message();
  EXPECT_EQ(pass->delivered, 0u);
  EXPECT_EQ(pass->failed, 1u);  // the second waits behind the first
  ASSERT_TRUE(pass->next_due);
  EXPECT_GE(*pass->next_due, now + 5);
  EXPECT_LE(*pass->next_due, now + 10);
  auto outbox = Outbox();
  EXPECT_EQ(outbox[1].state, kOutboxFailing);  // ListOutbox is newest first
  EXPECT_EQ(outbox[1].attempts, 1);
  EXPECT_NE(outbox[1].last_error.find("HTTP 503 down for maintenance"), std::string::npos)
      << outbox[1].last_error;
  EXPECT_EQ(outbox[0].state, kOutboxPending);

  // Not due yet: nothing is sent.
  ASSERT_TRUE(DeliverDue(
      *store_, *connectors, policy, [&] { return now; }, random, stop));
  EXPECT_EQ(receiver.requests().size(), 1u);

  receiver.SetStatus(200);
  now += 60;
  pass = DeliverDue(
      *store_, *connectors, policy, [&] { return now; }, random, stop);
  ASSERT_TRUE(pass);
  EXPECT_EQ(pass->delivered, 2u);
  EXPECT_TRUE(Confirmation().confirmed);

  auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].headers["idempotency-key"],
            "R-1/web-1/c3m-video/V1.0.0.2/install.succeeded");
  EXPECT_EQ(requests[2].headers["idempotency-key"],
            "R-1/web-2/c3m-video/V1.0.0.2/install.succeeded");
  for (const auto& request : requests) {
    EXPECT_EQ(request.target, "/fabu");
    EXPECT_EQ(request.headers.at("x-fabu-signature"), WebhookSignature("s3cret", request.body));
    EXPECT_EQ(request.headers.at("content-type"), "application/json");
  }
}

TEST(CmdbConfigTest, ConnectorsAreCheckedWithTheFieldNamed) {
  auto ok = CmdbConfig::FromJson(json::parse(R"({"connectors": [
      {"name": "hook", "type": "webhook", "url": "https://h.example/x", "secret": "k"},
      {"name": "itop", "type": "itop", "url": "https://itop.example/webservices/rest.php?version=1.3",
       "user": "rest", "password_file": "itop.pw", "classes": {"software": "WebServer"}}],
      "retry": {"initial_seconds": 2, "max_seconds": 30}})"));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->connectors[1].server_class, "Server");
  EXPECT_EQ(ok->connectors[1].software_class, "WebServer");
  auto again = CmdbConfig::FromJson(ok->ToJson());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->connectors.size(), 2u);

  auto bad = [](const char* text) {
    auto r = CmdbConfig::FromJson(json::parse(text));
    return r ? std::string("accepted") : r.error().message();
  };
  EXPECT_NE(bad(R"({"connectors": [{"name": "h", "type": "smtp", "url": "https://x"}]})")
                .find("cmdb.connectors[0].type"),
            std::string::npos);
  EXPECT_NE(bad(R"({"connectors": [{"name": "h", "type": "webhook", "url": "https://x"}]})")
                .find("secret"),
            std::string::npos);
  EXPECT_NE(bad(R"({"connectors": [{"name": "h", "type": "webhook", "url": "ftp://x",
                 "secret": "k"}]})")
                .find("cmdb.connectors[0].url"),
            std::string::npos);
  EXPECT_NE(bad(R"({"connectors": [{"name": "h", "type": "webhook", "url": "https://x",
                 "secret": "k", "colour": 1}]})")
                .find("colour"),
            std::string::npos);
  EXPECT_NE(bad(R"({"connectors": [{"name": "h", "type": "webhook", "url": "https://x",
                 "secret": "k"}, {"name": "h", "type": "webhook", "url": "https://y",
                 "secret": "k"}]})")
                .find("used twice"),
            std::string::npos);
}

}  // namespace
}  // namespace fabu::coordinator
