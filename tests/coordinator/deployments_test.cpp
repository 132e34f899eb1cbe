// Deployments in a real store: which steps are final, events stored once,
// and the host check (deploy/deployments.hpp).
#include "coordinator/deploy/deployments.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <soci/soci.h>

#include <cstdint>
#include <map>
#include <thread>

#include "coordinator/audit/audit_log.hpp"
#include "coordinator/common/wakeup_hub.hpp"
#include "coordinator/daemon/listeners.hpp"
#include "coordinator/deploy/preflight.hpp"
#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store_target.hpp"

namespace fabu::coordinator {
namespace {

using protocol::Step;

TEST(FinalResultTest, SuccessAndRollbackOutcomesAreFinal) {
  EXPECT_EQ(FinalResultOf(Step::kSucceeded, std::nullopt), DeploymentResult::kSucceeded);
  EXPECT_EQ(FinalResultOf(Step::kRolledBack, std::nullopt), DeploymentResult::kRolledBack);
  EXPECT_EQ(FinalResultOf(Step::kRollbackFailed, std::nullopt), DeploymentResult::kRollbackFailed);
  for (Step step : {Step::kAssigned, Step::kDownloading, Step::kVerified, Step::kActivating,
                    Step::kHealthChecking, Step::kRollingBack}) {
    EXPECT_FALSE(FinalResultOf(step, std::nullopt)) << protocol::StepName(step);
  }
}

TEST(FinalResultTest, AFailureIsFinalOnlyBeforeActivating) {
  EXPECT_EQ(FinalResultOf(Step::kFailed, Step::kDownloading), DeploymentResult::kFailed);
  EXPECT_EQ(FinalResultOf(Step::kFailed, Step::kVerified), DeploymentResult::kFailed);
  EXPECT_EQ(FinalResultOf(Step::kFailed, Step::kInstalling), DeploymentResult::kFailed);
  // From activating on, a rollback report follows.
  EXPECT_FALSE(FinalResultOf(Step::kFailed, Step::kActivating));
  EXPECT_FALSE(FinalResultOf(Step::kFailed, Step::kHealthChecking));
  EXPECT_FALSE(FinalResultOf(Step::kFailed, std::nullopt));
}

TEST(DeploymentResultTest, NamesAreTheStoredAndWireValues) {
  const std::pair<DeploymentResult, std::string_view> names[] = {
      {DeploymentResult::kSucceeded, "succeeded"},
      {DeploymentResult::kFailed, "failed"},
      {DeploymentResult::kRolledBack, "rolled_back"},
      {DeploymentResult::kRollbackFailed, "rollback_failed"},
      {DeploymentResult::kTimeout, "timeout"},
      {DeploymentResult::kHostRemoved, "host_removed"},
  };
  for (const auto& [result, name] : names) {
    EXPECT_EQ(DeploymentResultName(result), name);
    auto parsed = ParseDeploymentResult(name);
    ASSERT_TRUE(parsed) << name;
    EXPECT_EQ(*parsed, result);
  }
  auto unknown = ParseDeploymentResult("success");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("\"success\""), std::string::npos)
      << unknown.error().message();
}

// The release and package every deployment here is of.
release::Release TestRelease() {
  release::Release r;
  r.id = "R-1";
  return r;
}

StoredPackage TestPackage() {
  StoredPackage package;
  package.id = std::string(64, 'a');
  package.name = "c3m-video";
  package.version = "V1.3.0.12";
  package.size = 10;
  return package;
}

class DeploymentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Create(fabu::testing::TestStore(dir_ / "coordinator.db"));
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
    SubscribeListeners(store_->events());
    auto made = store_->Write(origin_, [&](Transaction& tx) -> Result<std::string> {
      for (const char* name : {"web-1", "web-2"}) {
        std::string n = name, credential = std::string("cred-") + name;
        tx.sql() << "INSERT INTO hosts (name, credential_sha256, labels, inventory, "
                    "agent_version, enrolled, last_seen, removed, removed_at, removed_by) VALUES "
                    "(:n, :c, '{}', '{}', '', '', 0, 0, '', '')",
            soci::use(n), soci::use(credential);
      }
      const release::Release r = TestRelease();
      const StoredPackage package = TestPackage();
      auto created = CreateDeployments(tx, r, package, std::vector<std::string>{"web-1", "web-2"},
                                       kTestEnvironment, 100);
      EXPECT_EQ(created.size(), 2u);
      // A second call makes nothing while they are unfinished.
      EXPECT_TRUE(CreateDeployments(tx, r, package, std::vector<std::string>{"web-1"},
                                    kTestEnvironment, 101)
                      .empty());
      return created.front().id;
    });
    ASSERT_TRUE(made) << made.error().message();
    deployment_ = *made;
  }

  Result<protocol::EventAck> Post(const std::string& host,
                                  const std::vector<protocol::DeploymentEvent>& events) {
    return store_->Write(origin_, [&](Transaction& tx) {
      Wakeups wakeups;
      return StoreEvents(tx, host, protocol::EventBatch{events}, 200, {}, wakeups);
    });
  }

  protocol::DeploymentEvent Event(std::uint64_t sequence, Step step) {
    protocol::DeploymentEvent e;
    e.deployment = deployment_;
    e.sequence = sequence;
    e.step = step;
    return e;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  WakeupHub hub_;
  AuditOrigin origin_{"test", "admin", "req", "local"};
  std::string deployment_;
};

TEST_F(DeploymentStoreTest, TheCreationIsAuditedWithTheDigestOfTheDeploymentsJson) {
  auto checked = store_->Read([](soci::session& sql) -> Result<std::size_t> {
    std::map<std::string, std::string> digests;
    for (const AuditEntry& e : ListAudit(sql, {})) {
      if (e.action == "deployment.create") digests[e.object_id] = e.after_sha256;
    }
    const std::vector<DeploymentRecord> made = ListDeployments(sql, "R-1");
    for (const DeploymentRecord& d : made) {
      EXPECT_EQ(digests.at(d.id), ObjectDigest(d.ToJson())) << d.id;
    }
    return made.size();
  });
  ASSERT_TRUE(checked) << checked.error().message();
  EXPECT_EQ(*checked, 2u);
}

TEST_F(DeploymentStoreTest, EventsAreStoredOnceAndAcknowledged) {
  EXPECT_EQ(deployment_, "R-1-1-web-1");
  auto ack = Post("web-1", {Event(1, Step::kAssigned), Event(2, Step::kDownloading)});
  ASSERT_TRUE(ack) << ack.error().message();
  EXPECT_EQ(ack->through.at(deployment_), 2u);
  ack = Post("web-1", {Event(2, Step::kDownloading), Event(1, Step::kAssigned)});
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->through.at(deployment_), 2u);
  auto count = store_->Read([&](soci::session& sql) -> Result<long long> {
    long long n = 0;
    sql << "SELECT COUNT(*) FROM deployment_events", soci::into(n);
    return n;
  });
  EXPECT_EQ(*count, 2);
  auto open = store_->Read([&](soci::session& sql) -> Result<std::optional<DeploymentRecord>> {
    return OpenAssignment(sql, "web-1");
  });
  ASSERT_TRUE(*open);
  EXPECT_EQ((*open)->step, Step::kDownloading);
  EXPECT_EQ((*open)->started, 200);
}

// Polls read together (store/read_batcher.hpp) get what each would alone:
// a host's oldest unfinished deployment, nothing for a host without one or
// whose deployment ended, the same answer to a host named twice.
TEST_F(DeploymentStoreTest, ManyHostsReadTogetherGetWhatEachGetsAlone) {
  auto finished = store_->Write(origin_, [&](Transaction& tx) -> Result<void> {
    auto web2 = ListHostDeployments(tx.sql(), "R-1", "web-2");
    EXPECT_EQ(web2.size(), 1u);
    FinishDeployment(tx, web2.front(), DeploymentResult::kSucceeded, "", 300);
    // web-1's second unfinished deployment, newer than R-1's.
    release::Release later = TestRelease();
    later.id = "R-2";
    EXPECT_EQ(CreateDeployments(tx, later, TestPackage(), std::vector<std::string>{"web-1"},
                                kTestEnvironment, 400)
                  .size(),
              1u);
    return {};
  });
  ASSERT_TRUE(finished) << finished.error().message();
  const std::vector<std::string> hosts = {"web-2", "web-9", "web-1", "web-1"};
  auto read = store_->ReadCached(
      [&](soci::session& sql,
          StatementCache& statements) -> Result<std::vector<std::optional<DeploymentRecord>>> {
        auto together = OpenAssignments(sql, statements, hosts);
        for (std::size_t i = 0; i < hosts.size(); ++i) {
          auto alone = OpenAssignments(sql, statements, std::span(&hosts[i], 1));
          EXPECT_EQ(alone.front().has_value(), together[i].has_value()) << hosts[i];
          if (alone.front() && together[i]) {
            EXPECT_EQ(alone.front()->id, together[i]->id);
          }
        }
        return together;
      });
  ASSERT_TRUE(read) << read.error().message();
  ASSERT_EQ(read->size(), hosts.size());
  EXPECT_FALSE((*read)[0]) << "web-2's deployment ended";
  EXPECT_FALSE((*read)[1]) << "web-9 has none";
  ASSERT_TRUE((*read)[2]);
  EXPECT_EQ((*read)[2]->id, deployment_) << "the oldest first";
  ASSERT_TRUE((*read)[3]);
  EXPECT_EQ((*read)[3]->id, deployment_);
}

// The pre-flight question of each of many hosts read together: the latest
// round's, unanswered, asked within kPreflightAnswerSeconds; the same as each
// host's read alone.
TEST_F(DeploymentStoreTest, ManyHostsReadTogetherGetTheirOwnPreflightQuestion) {
  auto asked = store_->Write(origin_, [&](Transaction& tx) -> Result<void> {
    std::string record = release::ReleaseToJson(TestRelease()).dump();
    tx.sql() << "INSERT INTO releases (id, seq, title, product, version, category, state, "
                "close_code, owner, created, updated, record) VALUES ('R-1', 1, '', "
                "'c3m-video', 'V1.3.0.12', 'minor', 'deploying', '', 'zhang.rm', '', '', :r)",
        soci::use(record);
    // Round 1 asked web-1 and web-2; round 2, the latest, asked web-1 and
    // web-3, and web-3 has answered: only web-1 has a question now.
    for (long long round : {1LL, 2LL}) {
      protocol::PreflightRequest request;
      request.id = fmt::format("R-1#{}", round);
      request.release = "R-1";
      request.app = "c3m-video";
      request.version = "V1.3.0.12";
      request.package_id = std::string(64, 'a');
      std::string text = protocol::PreflightRequestToJson(request).dump();
      long long asked_at = 1000 + round;
      tx.sql() << "INSERT INTO preflight_rounds (release_id, round, asked, asked_by, "
                  "override_by, override_reason, override_at, request) VALUES ('R-1', :n, :a, "
                  "'zhang.rm', '', '', 0, :q)",
          soci::use(round), soci::use(asked_at), soci::use(text);
    }
    tx.sql() << "INSERT INTO preflight_hosts (release_id, round, host, answered, ready, reasons, "
                "free_bytes, installed_version) VALUES ('R-1', 1, 'web-1', 0, -1, '[]', 0, ''), "
                "('R-1', 1, 'web-2', 0, -1, '[]', 0, ''), ('R-1', 2, 'web-1', 0, -1, '[]', 0, ''), "
                "('R-1', 2, 'web-3', 1001, 1, '[]', 0, '')";
    return {};
  });
  ASSERT_TRUE(asked) << asked.error().message();
  const std::vector<std::string> hosts = {"web-3", "web-2", "web-1", "web-4"};
  auto at = [&](UnixSeconds now) {
    return store_->ReadCached(
        [&](soci::session& sql, StatementCache& statements)
            -> Result<std::vector<std::optional<protocol::PreflightRequest>>> {
          auto together = OpenPreflights(sql, statements, hosts, now);
          for (std::size_t i = 0; i < hosts.size(); ++i) {
            auto alone = OpenPreflights(sql, statements, std::span(&hosts[i], 1), now);
            EXPECT_EQ(alone.front().has_value(), together[i].has_value()) << hosts[i];
            if (alone.front() && together[i]) {
              EXPECT_EQ(alone.front()->id, together[i]->id);
            }
          }
          return together;
        });
  };
  auto soon = at(1010);
  ASSERT_TRUE(soon) << soon.error().message();
  ASSERT_EQ(soon->size(), hosts.size());
  EXPECT_FALSE((*soon)[0]) << "web-3 answered";
  EXPECT_FALSE((*soon)[1]) << "web-2 was asked only in a round no longer the latest";
  ASSERT_TRUE((*soon)[2]);
  EXPECT_EQ((*soon)[2]->id, "R-1#2");
  EXPECT_FALSE((*soon)[3]) << "web-4 was never asked";
  auto late = at(1002 + kPreflightAnswerSeconds + 1);
  ASSERT_TRUE(late) << late.error().message();
  for (const auto& question : *late) EXPECT_FALSE(question) << "asked too long ago";
}

// Given a wave with parts left that a person started (the API wakes its
// first part), the hub is held from then until the next sweep returns.
TEST_F(DeploymentStoreTest, AWaveStartedByAPersonHoldsTheHubUntilTheSweep) {
  Wakeups started;
  started.rollouts_to_go_on.push_back("R-1");
  WakeHosts(hub_, started);
  EXPECT_TRUE(hub_.holding());
  // The sweep's own wakeups pass nothing on.
  WakeHosts(hub_, Wakeups{});
  ASSERT_TRUE(SweepDeployments(*store_, 100, {}, hub_));
  EXPECT_FALSE(hub_.holding());
  ASSERT_TRUE(SweepDeployments(*store_, 100, {}, hub_));  // nothing left to end
  EXPECT_FALSE(hub_.holding());
}

// The newest event decides the deployment's step and message, whether it
// came in this batch or before it (procedure §6.2.4: status shows the step a
// host is in).
TEST_F(DeploymentStoreTest, ALateOlderEventLeavesTheNewestStepAndMessage) {
  auto newest = Event(3, Step::kInstalling);
  newest.message = "unpacking";
  ASSERT_TRUE(Post("web-1", {Event(1, Step::kAssigned), newest}));
  auto open = store_->Read([&](soci::session& sql) -> Result<std::optional<DeploymentRecord>> {
    return OpenAssignment(sql, "web-1");
  });
  ASSERT_TRUE(open && *open);
  EXPECT_EQ((*open)->step, Step::kInstalling);
  EXPECT_EQ((*open)->message, "unpacking");

  auto late = Event(2, Step::kDownloading);
  late.message = "late";
  auto ack = Post("web-1", {late});
  ASSERT_TRUE(ack) << ack.error().message();
  EXPECT_EQ(ack->through.at(deployment_), 3u);
  open = store_->Read([&](soci::session& sql) -> Result<std::optional<DeploymentRecord>> {
    return OpenAssignment(sql, "web-1");
  });
  ASSERT_TRUE(open && *open);
  EXPECT_EQ((*open)->step, Step::kInstalling);
  EXPECT_EQ((*open)->message, "unpacking");

  // A host in a newer step shows that step's words, none here: never the
  // words of a step it has left.
  ASSERT_TRUE(Post("web-1", {Event(4, Step::kActivating)}));
  open = store_->Read([&](soci::session& sql) -> Result<std::optional<DeploymentRecord>> {
    return OpenAssignment(sql, "web-1");
  });
  ASSERT_TRUE(open && *open);
  EXPECT_EQ((*open)->step, Step::kActivating);
  EXPECT_EQ((*open)->message, "");

  // Once a step failed, its reason stays through the rollback steps that
  // say nothing of their own.
  auto failed = Event(5, Step::kFailed);
  failed.failed_step = Step::kActivating;
  failed.message = "activate exited 3";
  ASSERT_TRUE(Post("web-1", {failed, Event(6, Step::kRollingBack)}));
  open = store_->Read([&](soci::session& sql) -> Result<std::optional<DeploymentRecord>> {
    return OpenAssignment(sql, "web-1");
  });
  ASSERT_TRUE(open && *open);
  EXPECT_EQ((*open)->step, Step::kRollingBack);
  EXPECT_EQ((*open)->message, "activate exited 3");
}

// Given a release that passed its health check and failed while observed,
// reported in one batch with its rollback, we should record one incident
// against the release, however often the batch is re-sent.
TEST_F(DeploymentStoreTest, AFailureWhileObservedRecordsOneIncident) {
  protocol::DeploymentEvent failed = Event(4, Step::kFailed);
  failed.failed_step = Step::kObserving;
  failed.message = "health_check exited 1";
  const std::vector<protocol::DeploymentEvent> batch = {
      Event(1, Step::kAssigned),    Event(2, Step::kHealthChecking),
      Event(3, Step::kObserving),   failed,
      Event(5, Step::kRollingBack), Event(6, Step::kRolledBack)};
  ASSERT_TRUE(Post("web-1", batch));
  ASSERT_TRUE(Post("web-1", batch));
  auto incidents = store_->Read([&](soci::session& sql) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    soci::rowset<soci::row> rows = (sql.prepare << "SELECT release_id, host, severity, summary, "
                                                   "source, state FROM incidents");
    for (const soci::row& r : rows) {
      out.push_back(r.get<std::string>(0) + "|" + r.get<std::string>(1) + "|" +
                    r.get<std::string>(2) + "|" + r.get<std::string>(4) + "|" +
                    r.get<std::string>(5) + "|" + r.get<std::string>(3));
    }
    return out;
  });
  ASSERT_TRUE(incidents) << incidents.error().message();
  ASSERT_EQ(incidents->size(), 1u);
  EXPECT_EQ(incidents->front(),
            "R-1|web-1|P3|observation|open|c3m-video V1.3.0.12 failed its health check while "
            "observed on web-1: health_check exited 1");
  auto listed = store_->Read([&](soci::session& sql) -> Result<std::vector<DeploymentRecord>> {
    return ListDeployments(sql, "R-1");
  });
  EXPECT_EQ((*listed)[0].result, DeploymentResult::kRolledBack);
}

// Given a batch of events (as fabu-agent sends its journal) re-sent whole,
// overlapping, with a repeat inside one batch, and by several callers in
// the same group commit, we should store each (deployment, sequence) once,
// with what was sent first, and acknowledge through the highest.
TEST_F(DeploymentStoreTest, ABatchIsStoredOnceHoweverOftenItIsResent) {
  std::vector<protocol::DeploymentEvent> batch;
  for (std::uint64_t seq = 1; seq <= 10; ++seq) {
    protocol::DeploymentEvent e = Event(seq, Step::kDownloading);
    e.message = "first " + std::to_string(seq);
    batch.push_back(e);
  }
  ASSERT_TRUE(Post("web-1", batch));
  ASSERT_TRUE(Post("web-1", batch));
  std::vector<protocol::DeploymentEvent> wider = batch;
  for (auto& e : wider) e.message = "again";
  wider.push_back(Event(11, Step::kDownloading));
  wider.push_back(Event(11, Step::kDownloading));  // twice in one batch
  wider.push_back(Event(12, Step::kDownloaded));
  std::vector<std::thread> senders;
  std::vector<Result<protocol::EventAck>> acks(4, Fail(ErrorCode::kInternal, "not run"));
  for (std::size_t i = 0; i < acks.size(); ++i) {
    senders.emplace_back([&, i] { acks[i] = Post("web-1", wider); });
  }
  for (auto& sender : senders) sender.join();
  for (const auto& ack : acks) {
    ASSERT_TRUE(ack) << ack.error().message();
    EXPECT_EQ(ack->through.at(deployment_), 12u);
  }
  auto rows = store_->Read([&](soci::session& sql) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    soci::rowset<soci::row> rs = (sql.prepare << "SELECT sequence, step, message FROM "
                                                 "deployment_events ORDER BY sequence");
    for (const soci::row& r : rs) {
      out.push_back(std::to_string(r.get<long long>(0)) + " " + r.get<std::string>(1) + " " +
                    r.get<std::string>(2));
    }
    return out;
  });
  ASSERT_TRUE(rows) << rows.error().message();
  ASSERT_EQ(rows->size(), 12u);
  EXPECT_EQ((*rows)[2], "3 downloading first 3");
  EXPECT_EQ((*rows)[10], "11 downloading ");
  EXPECT_EQ((*rows)[11], "12 downloaded ");
  auto open = store_->Read([&](soci::session& sql) -> Result<std::optional<DeploymentRecord>> {
    return OpenAssignment(sql, "web-1");
  });
  ASSERT_TRUE(open && *open);
  EXPECT_EQ((*open)->step, Step::kDownloaded);
  EXPECT_EQ((*open)->last_sequence, 12u);
}

TEST_F(DeploymentStoreTest, AnotherHostsDeploymentIsRefusedAndNothingIsStored) {
  auto refused = Post("web-2", {Event(1, Step::kAssigned)});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermissionDenied);
  auto ack = Post("web-1", {Event(1, Step::kAssigned)});
  EXPECT_EQ(ack->through.at(deployment_), 1u);
}

// Several agents' POSTs written in one unit of work (as the agent API batches
// them) are each answered as if alone: a POST naming another host's
// deployment is refused and nothing of it is stored, the others are stored
// once; a deployment named by two POSTs moves once, to its newest step, with
// one audit entry naming the last of them.
TEST_F(DeploymentStoreTest, SeveralPostsInOneWriteAreEachAnsweredAsAlone) {
  const std::string other = "R-1-1-web-2";
  auto event = [](const std::string& deployment, std::uint64_t sequence, Step step,
                  std::string message = {}) {
    protocol::DeploymentEvent e;
    e.deployment = deployment;
    e.sequence = sequence;
    e.step = step;
    e.message = std::move(message);
    return e;
  };
  std::vector<EventPost> posts = {
      {"web-1",
       {{event(deployment_, 1, Step::kAssigned), event(deployment_, 2, Step::kDownloading)}},
       {"host:web-1", "agent", "req-a", "10.0.0.1:1"}},
      // web-2 names web-1's deployment: refused, its own event with it.
      {"web-2",
       {{event(other, 1, Step::kAssigned), event(deployment_, 9, Step::kSucceeded)}},
       {"host:web-2", "agent", "req-b", "10.0.0.2:1"}},
      // web-1 again: a resent event, a new one, and a NUL in its message.
      {"web-1",
       {{event(deployment_, 2, Step::kDownloading),
         event(deployment_, 3, Step::kDownloaded, std::string("got it\0 all", 11))}},
       {"host:web-1", "agent", "req-c", "10.0.0.1:2"}},
      {"web-2",
       {{event(other, 1, Step::kAssigned)}},
       {"host:web-2", "agent", "req-d", "10.0.0.2:2"}},
  };
  auto answers = store_->Write(
      origin_, [&](Transaction& tx) -> Result<std::vector<Result<protocol::EventAck>>> {
        Wakeups wakeups;
        return StoreEventPosts(tx, posts, 200, {}, wakeups);
      });
  ASSERT_TRUE(answers) << answers.error().message();
  ASSERT_EQ(answers->size(), 4u);
  ASSERT_TRUE((*answers)[0]) << (*answers)[0].error().message();
  EXPECT_EQ((*answers)[0]->through.at(deployment_), 3u);
  ASSERT_FALSE((*answers)[1]);
  EXPECT_EQ((*answers)[1].error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE((*answers)[1].error().message().find(deployment_ + " is not assigned to host web-2"),
            std::string::npos)
      << (*answers)[1].error().message();
  ASSERT_TRUE((*answers)[2]);
  EXPECT_EQ((*answers)[2]->through.at(deployment_), 3u);
  ASSERT_TRUE((*answers)[3]);
  EXPECT_EQ((*answers)[3]->through.at(other), 1u);

  struct Stored {
    long long events = 0, of_other = 0, audits = 0;
    std::string step, message, actor, request, detail;
  };
  auto stored = store_->Read([&](soci::session& sql) -> Result<Stored> {
    Stored s;
    sql << "SELECT COUNT(*) FROM deployment_events WHERE deployment = :d", soci::use(deployment_),
        soci::into(s.events);
    sql << "SELECT COUNT(*) FROM deployment_events WHERE deployment = :d", soci::use(other),
        soci::into(s.of_other);
    sql << "SELECT step, message FROM deployments WHERE id = :d", soci::use(deployment_),
        soci::into(s.step), soci::into(s.message);
    sql << "SELECT COUNT(*) FROM audit_log WHERE action = 'deployment.events' AND object_id = :d",
        soci::use(deployment_), soci::into(s.audits);
    sql << "SELECT actor, request_id, detail FROM audit_log WHERE action = 'deployment.events' "
           "AND object_id = :d",
        soci::use(deployment_), soci::into(s.actor), soci::into(s.request), soci::into(s.detail);
    return s;
  });
  ASSERT_TRUE(stored) << stored.error().message();
  EXPECT_EQ(stored->events, 3);  // 1, 2, 3: the refused POST's 9 is not there
  EXPECT_EQ(stored->of_other, 1);
  EXPECT_EQ(stored->step, "downloaded");
  EXPECT_EQ(stored->message, "got it all");
  EXPECT_EQ(stored->audits, 1);
  EXPECT_EQ(stored->actor, "host:web-1");
  EXPECT_EQ(stored->request, "req-c");
  const auto detail = nlohmann::json::parse(stored->detail);
  EXPECT_EQ(detail.at("stored"), 3);
  EXPECT_EQ(detail.at("from"), "assigned");
  EXPECT_EQ(detail.at("to"), "downloaded");
  auto verified = store_->Read(
      [](soci::session& sql) -> Result<AuditVerification> { return VerifyAudit(sql); });
  ASSERT_TRUE(verified);
  EXPECT_TRUE(verified->intact) << verified->reason;
}

// A wave reads what it needs of all its targets at once (from 64 of them);
// fewer are read one by one. Both must make the same deployments.
void ExpectTheSecondReleaseMadeRight(Store& store, const AuditOrigin& origin, int new_hosts) {
  auto made = store.Write(origin, [&](Transaction& tx) -> Result<std::vector<DeploymentRecord>> {
    tx.sql() << "INSERT INTO host_apps (host, app, current_version, releases, updated) VALUES "
                "('web-1', 'c3m-video', 'V1.3.0.11', '[]', ''), "
                "('host-007', 'c3m-video', 'V1.2.0.0', '[]', ''), "
                "('host-008', 'other-app', 'V9', '[]', '')";
    std::vector<NewDeployment> targets = {{"web-1"}, {"web-2"}};
    for (int i = 0; i < new_hosts; ++i) targets.push_back({fmt::format("host-{:03}", i)});
    targets.push_back({"host-000"});  // named twice: made once
    return CreateDeployments(tx, TestRelease(), TestPackage(), targets, kTestEnvironment, 300);
  });
  ASSERT_TRUE(made) << made.error().message();
  std::map<std::string, DeploymentRecord> by_host;
  for (const DeploymentRecord& d : *made) {
    EXPECT_TRUE(by_host.emplace(d.host, d).second) << d.host << " was given two deployments";
  }
  // web-2's first attempt is unfinished: nothing new. web-1's ended: its second.
  EXPECT_EQ(made->size(), static_cast<std::size_t>(new_hosts) + 1);
  EXPECT_FALSE(by_host.contains("web-2"));
  EXPECT_EQ(by_host.at("web-1").attempt, 2);
  EXPECT_EQ(by_host.at("web-1").id, "R-1-2-web-1");
  EXPECT_EQ(by_host.at("web-1").from_version, "V1.3.0.11");
  EXPECT_EQ(by_host.at("host-000").attempt, 1);
  EXPECT_EQ(by_host.at("host-007").from_version, "V1.2.0.0");
  EXPECT_EQ(by_host.at("host-008").from_version, "");  // another app's version is not this one's
  EXPECT_EQ(by_host.at("host-009").from_version, "");
}

TEST_F(DeploymentStoreTest, AFewTargetsAreReadOneByOne) {
  ASSERT_TRUE(Post("web-1", {Event(1, Step::kAssigned), Event(2, Step::kSucceeded)}));
  ExpectTheSecondReleaseMadeRight(*store_, origin_, 10);
}

TEST_F(DeploymentStoreTest, AWavesTargetsAreReadAllAtOnceWithTheSameResult) {
  ASSERT_TRUE(Post("web-1", {Event(1, Step::kAssigned), Event(2, Step::kSucceeded)}));
  ExpectTheSecondReleaseMadeRight(*store_, origin_, 100);
}

TEST_F(DeploymentStoreTest, AFinalStepEndsTheAssignmentAndATimeoutEndsTheOther) {
  ASSERT_TRUE(Post("web-1", {Event(1, Step::kAssigned), Event(2, Step::kSucceeded)}));
  auto open = store_->Read([&](soci::session& sql) -> Result<std::optional<DeploymentRecord>> {
    return OpenAssignment(sql, "web-1");
  });
  EXPECT_FALSE(*open);
  // web-2's deadline is 100 + the default host timeout.
  auto swept = SweepDeployments(*store_, 100 + kDefaultHostTimeoutSeconds, {}, hub_);
  ASSERT_TRUE(swept) << swept.error().message();
  EXPECT_EQ(swept->timed_out, 1u);
  auto listed = store_->Read([&](soci::session& sql) -> Result<std::vector<DeploymentRecord>> {
    return ListDeployments(sql, "R-1");
  });
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].result, DeploymentResult::kSucceeded);
  EXPECT_EQ((*listed)[1].result, DeploymentResult::kTimeout);
}

// Records digested by the code that wrote the audit chains in use: the
// after_sha256 of "deployment.create" entries must stay what it was.
DeploymentRecord JustMadeRecord() {
  DeploymentRecord d;
  d.id = "R-12-1-web-0001";
  d.release_id = "R-12";
  d.host = "web-0001";
  d.environment = "test";
  d.app = "c3m-video";
  d.version = "V1.3.0.12";
  d.package_id = std::string(64, 'a');
  d.package_size = 123456789;
  d.package_url = "/api/v1/agent/packages/" + d.package_id;
  d.host_timeout_seconds = 1800;
  d.step = Step::kAssigned;
  d.message =
      "\xc3\x9c"
      "berpr\xc3\xbc"
      "fung: \xe2\x80\x9e"
      "timeout\xe2\x80\x9c";
  d.created = 1767225600;
  d.deadline = 1767227400;  // started, finished: null; wave -1: null
  return d;
}

DeploymentRecord FinishedRecord() {
  DeploymentRecord d = JustMadeRecord();
  d.attempt = 3;
  d.environment = "production";
  d.kind = protocol::DeploymentKind::kRollback;
  d.step = Step::kRolledBack;
  d.result = DeploymentResult::kRolledBack;
  d.message = "health check said \"no\"\nC:\\logs\x01\x7f";
  d.last_sequence = 42;
  d.started = 1767225660;
  d.finished = 1767226000;
  d.wave = 0;
  d.from_version = "V1.3.0.11";
  d.observe_seconds = 600;
  d.observe_interval_seconds = 30;
  return d;
}

TEST(DeploymentDigestTest, DigestsMatchThoseOfTheChainsAlreadyWritten) {
  EXPECT_EQ(ObjectDigest(JustMadeRecord().ToJson()),
            "0d36e46baa769603b4a6901afe00f32a9fa6ca7424e6a6b47099a0bd846a8d44");
  EXPECT_EQ(ObjectDigest(FinishedRecord().ToJson()),
            "60a013055857eaf65b28c7621ccb5c8c0d50b0fed973721a3eb8eb019f64410f");
  // A record made empty starts at step "assigned" (its step is an enum with
  // that default; a record the coordinator makes always had it).
  EXPECT_EQ(ObjectDigest(DeploymentRecord{}.ToJson()),
            "a5d48f0d98621e372aceff725717a1cc0d6e63064ec0b053b2cbf9ef9e5994e5");
  EXPECT_EQ(JustMadeRecord().Digest(),
            "0d36e46baa769603b4a6901afe00f32a9fa6ca7424e6a6b47099a0bd846a8d44");
  EXPECT_EQ(FinishedRecord().Digest(),
            "60a013055857eaf65b28c7621ccb5c8c0d50b0fed973721a3eb8eb019f64410f");
  EXPECT_EQ(DeploymentRecord{}.Digest(),
            "a5d48f0d98621e372aceff725717a1cc0d6e63064ec0b053b2cbf9ef9e5994e5");
}

TEST(DeploymentDigestTest, DigestIsTheDigestOfItsJson) {
  // Given records with every field set, we should digest exactly what
  // ToJson shows: a field added to one and not the other fails here.
  DeploymentRecord extreme = FinishedRecord();
  extreme.attempt = INT64_MAX;
  extreme.last_sequence = UINT64_MAX;
  extreme.observe_seconds = -1;
  extreme.wave = 17909;
  extreme.host = "h\xc3\xb4te \"1\"";
  extreme.from_version = std::string("nul\0byte", 8);
  DeploymentRecord waveless = FinishedRecord();
  waveless.wave = -1;
  waveless.started = 0;
  for (const DeploymentRecord& d :
       {JustMadeRecord(), FinishedRecord(), DeploymentRecord{}, extreme, waveless}) {
    EXPECT_EQ(d.Digest(), ObjectDigest(d.ToJson())) << d.ToJson().dump();
  }
}

TEST(DeploymentDigestTest, InvalidUtf8CannotBeDigested) {
  DeploymentRecord d = JustMadeRecord();
  d.message = "cut \xe2\x82";
  EXPECT_THROW(ObjectDigest(d.ToJson()), nlohmann::json::type_error);
  EXPECT_THROW(d.Digest(), nlohmann::json::type_error);
}

}  // namespace
}  // namespace fabu::coordinator
