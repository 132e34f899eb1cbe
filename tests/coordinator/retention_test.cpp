// Retention (coordinator/daemon/retention.hpp) in a real store with a fake
// clock: which packages stay (named by an open release, by one closed within
// the period, a host's rollback target, a fresh upload) and which go (named
// only by a release closed long ago); old deployment events summarised with
// what the release report and the upgrade records read left as it was; the
// audit chain still verifying; and a data directory that stops growing over
// 30 simulated days of releases.
#include "coordinator/daemon/retention.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <soci/soci.h>

#include <algorithm>
#include <random>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/daemon/listeners.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/deploy/host_timeline.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/packages/package_store.hpp"
#include "coordinator/store/release_records.hpp"
#include "packaging/package.hpp"
#include "tests/release/test_plans.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_store_target.hpp"

namespace fabu::coordinator {
namespace {

namespace fs = std::filesystem;
using protocol::Step;
using protocol::UnixSeconds;

constexpr UnixSeconds kDay = 86400;
constexpr UnixSeconds kStart = 1795132800;  // 2026-11-21T00:00:00Z

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_.root = dir_ / "data";
    fs::create_directories(data_.packages());
    auto store = Store::Create(fabu::testing::TestStore(data_.store()), clock_);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
    SubscribeListeners(store_->events());
    auto key = packaging::SigningKey::Generate();
    ASSERT_TRUE(key) << key.error().message();
    key_.emplace(std::move(*key));
    testing::WriteFile(dir_ / "publisher.pub", key_->public_key().ToPem());
    ASSERT_TRUE(TrustPublisherKey(data_, dir_ / "publisher.pub"));
    ASSERT_TRUE(store_->Write(origin_, [&](Transaction& tx) -> Result<void> {
      for (const char* name : {"web-1", "web-2"}) {
        std::string n = name, credential = std::string("cred-") + name;
        tx.sql() << "INSERT INTO hosts (name, credential_sha256, labels, inventory, "
                    "agent_version, enrolled, last_seen, removed, removed_at, removed_by) VALUES "
                    "(:n, :c, '{}', '{}', '', '', 0, 0, '', '')",
            soci::use(n), soci::use(credential);
      }
      return {};
    }));
  }

  // Builds and uploads a signed package of `app` at `version` holding
  // `bytes` random (incompressible) bytes, at the clock's now.
  StoredPackage Upload(const std::string& app, const std::string& version,
                       std::size_t bytes = 1024) {
    const fs::path tree = dir_ / fmt::format("tree-{}", ++built_);
    std::string content(bytes, '\0');
    std::generate(content.begin(), content.end(), [&] { return static_cast<char>(random_()); });
    testing::WriteFile(tree / "bin" / "app", content);
    packaging::BuildOptions options;
    options.name = app;
    options.version = *protocol::Version::Parse(version);
    options.from = tree;
    options.out = dir_ / fmt::format("upload-{}.fabu", built_);
    options.created = clock_.Seconds();
    auto built = packaging::BuildPackage(options, *key_);
    EXPECT_TRUE(built) << built.error().message();
    fs::remove_all(tree);
    auto stored = StoreUploadedPackage(*store_, data_, {}, origin_, options.out);
    EXPECT_TRUE(stored) << stored.error().message();
    return stored ? stored->package : StoredPackage{};
  }

  // Release R-<n> naming `package`, in `state`, last changed at the clock's now.
  release::Release AddRelease(const StoredPackage& package, release::ReleaseState state) {
    release::Release r;
    r.id = fmt::format("R-{}", ++releases_);
    r.plan = release::testing::FullPlan();
    r.plan.packages = {package.id};
    r.plan.version = *protocol::Version::Parse(package.version);
    r.owner = "zhang.rm";
    r.state = state;
    r.created_at = r.updated_at = clock_.Seconds();
    EXPECT_TRUE(store_->Write(origin_, [&](Transaction& tx) -> Result<void> {
      InsertRelease(tx.sql(), r);
      return {};
    }));
    return r;
  }

  void Close(release::Release& r) {
    r.state = release::ReleaseState::kClosed;
    r.updated_at = clock_.Seconds();
    EXPECT_TRUE(store_->Write(origin_, [&](Transaction& tx) -> Result<void> {
      SaveRelease(tx.sql(), r);
      return {};
    }));
  }

  // Deploys `package` of `r` to `host` in `environment`; the host reports
  // `steps` (the failure, if any, at the health check, with `output`).
  DeploymentRecord Deploy(const release::Release& r, const StoredPackage& package,
                          const std::string& host, const std::vector<Step>& steps,
                          const std::string& output = "",
                          std::string_view environment = kProductionEnvironment) {
    std::vector<DeploymentRecord> made;
    EXPECT_TRUE(store_->Write(origin_, [&](Transaction& tx) -> Result<void> {
      made = CreateDeployments(tx, r, package, std::vector<std::string>{host}, environment,
                               clock_.Seconds());
      return {};
    }));
    EXPECT_EQ(made.size(), 1u);
    if (made.empty()) return {};
    protocol::EventBatch batch;
    std::uint64_t sequence = 0;
    for (Step step : steps) {
      protocol::DeploymentEvent e;
      e.deployment = made[0].id;
      e.sequence = ++sequence;
      e.step = step;
      e.app = package.name;
      e.version = package.version;
      e.time = clock_.Seconds();
      if (step == Step::kFailed) e.failed_step = Step::kHealthChecking;
      if (step == Step::kFailed || step == Step::kHealthChecking) e.output = output;
      batch.events.push_back(e);
    }
    EXPECT_TRUE(store_->Write(origin_, [&](Transaction& tx) {
      Wakeups wakeups;
      return StoreEvents(tx, host, batch, clock_.Seconds(), {}, wakeups);
    }));
    return made[0];
  }

  void Inventory(const std::string& host, const std::string& app, const std::string& current,
                 std::vector<std::string> kept) {
    protocol::Inventory inventory;
    inventory.agent_version = "0.1.0";
    inventory.apps.push_back({app, current, std::move(kept)});
    EXPECT_TRUE(store_->Write(origin_, [&](Transaction& tx) {
      return StoreInventory(tx, host, inventory, clock_.Seconds());
    }));
  }

  GcSummary Gc(int days = 30) {
    auto summary = CollectGarbage(*store_, data_, days, {}, origin_);
    EXPECT_TRUE(summary) << summary.error().message();
    return summary.value_or(GcSummary{});
  }

  bool Stored(const StoredPackage& p) {
    auto found = store_->Read([&](soci::session& sql) { return FindPackage(sql, p.id); });
    const bool file = fs::exists(data_.packages() / (p.id + ".fabu"));
    EXPECT_EQ(found.has_value(), file)
        << "row and file disagree for " << p.name << " " << p.version;
    return found.has_value();
  }

  long long Count(const std::string& query) {
    auto n = store_->Read([&](soci::session& sql) -> Result<long long> {
      long long value = 0;
      sql << query, soci::into(value);
      return value;
    });
    EXPECT_TRUE(n) << n.error().message();
    return n.value_or(-1);
  }

  // What the data directory holds: the store's pages (page_count *
  // page_size, the size of the database file once the WAL is checkpointed
  // into it, its free pages included) and the package files.
  std::uint64_t DataBytes() {
    const long long pages = Count("PRAGMA page_count");
    const long long page_size = Count("PRAGMA page_size");
    std::uint64_t total = static_cast<std::uint64_t>(pages * page_size);
    for (const auto& entry : fs::directory_iterator(data_.packages())) {
      if (entry.is_regular_file()) total += entry.file_size();
    }
    return total;
  }

  void Pass(UnixSeconds seconds) { clock_.Set(clock_.Seconds() + seconds); }

  testing::TempDir dir_;
  DataDir data_;
  FakeClock clock_{kStart};
  std::unique_ptr<Store> store_;
  std::optional<packaging::SigningKey> key_;
  std::mt19937 random_{7};
  int built_ = 0;
  int releases_ = 0;
  AuditOrigin origin_{"test", "admin", "req", "local"};
};

TEST_F(RetentionTest, PackagesStayWhileAReleaseNeedsThemOrAHostCouldRollBackToThem) {
  const StoredPackage old_closed = Upload("c3m-video", "V1.0.0.1");
  const StoredPackage open_one = Upload("c3m-video", "V1.0.0.2");
  const StoredPackage rollback_target = Upload("c3m-api", "V2.0.0.1");
  const StoredPackage recent_closed = Upload("c3m-api", "V2.0.0.2");
  release::Release r1 = AddRelease(old_closed, release::ReleaseState::kApproved);
  Close(r1);
  AddRelease(open_one, release::ReleaseState::kInReview);
  release::Release r3 = AddRelease(rollback_target, release::ReleaseState::kApproved);
  Close(r3);
  // web-1 runs c3m-api V2.0.0.2 and keeps V2.0.0.1 to roll back to.
  Inventory("web-1", "c3m-api", "V2.0.0.2", {"V2.0.0.1", "V2.0.0.2"});
  Pass(40 * kDay);
  release::Release r4 = AddRelease(recent_closed, release::ReleaseState::kApproved);
  Close(r4);
  Pass(kDay);
  const StoredPackage fresh = Upload("c3m-web", "V3.0.0.1");  // named by no release yet

  const GcSummary summary = Gc(30);
  ASSERT_EQ(summary.packages.size(), 1u);
  EXPECT_EQ(summary.packages[0].id, old_closed.id);
  EXPECT_EQ(summary.package_bytes, old_closed.size);
  EXPECT_EQ(summary.packages_kept, 4u);
  EXPECT_FALSE(Stored(old_closed));  // named only by R-1, closed 41 days ago
  EXPECT_TRUE(Stored(open_one));     // R-2 is still in review
  EXPECT_TRUE(Stored(rollback_target));
  EXPECT_TRUE(Stored(recent_closed));  // R-4 closed a day ago
  EXPECT_TRUE(Stored(fresh));
  EXPECT_TRUE(summary.problems.empty());

  // Once web-1 no longer keeps V2.0.0.1 (and 30 more days pass), it goes too.
  Inventory("web-1", "c3m-api", "V2.0.0.2", {"V2.0.0.2"});
  Pass(31 * kDay);
  const GcSummary later = Gc(30);
  EXPECT_FALSE(Stored(rollback_target));
  EXPECT_TRUE(Stored(recent_closed));  // web-1's current version
  EXPECT_TRUE(Stored(open_one));
  EXPECT_FALSE(Stored(fresh));
  EXPECT_EQ(later.packages.size(), 2u);
}

TEST_F(RetentionTest, TheVersionBeforeTheLatestUpgradeStaysAsARollbackTarget) {
  const StoredPackage v1 = Upload("c3m-video", "V1.0.0.1");
  const StoredPackage v2 = Upload("c3m-video", "V1.0.0.2");
  release::Release r1 = AddRelease(v1, release::ReleaseState::kApproved);
  Close(r1);
  Inventory("web-2", "c3m-video", "V1.0.0.1", {"V1.0.0.1"});
  release::Release r2 = AddRelease(v2, release::ReleaseState::kDeploying);
  Deploy(r2, v2, "web-2", {Step::kAssigned, Step::kSucceeded});
  // The host's inventory since says nothing of V1.0.0.1 (not reported yet).
  Inventory("web-2", "other-app", "V9.0.0.1", {});
  Close(r2);
  Pass(60 * kDay);
  Gc(30);
  EXPECT_TRUE(Stored(v1));  // the upgrade record's from_version on web-2
  EXPECT_TRUE(Stored(v2));  // the upgrade record's to_version: what web-2 runs
}

TEST_F(RetentionTest, OldEventsAreSummarisedAndTheReportsReadTheSame) {
  const StoredPackage v1 = Upload("c3m-video", "V1.0.0.1");
  release::Release r = AddRelease(v1, release::ReleaseState::kDeploying);
  const DeploymentRecord ok =
      Deploy(r, v1, "web-1",
             {Step::kAssigned, Step::kDownloading, Step::kVerified, Step::kInstalling,
              Step::kActivating, Step::kHealthChecking, Step::kSucceeded},
             "healthy");
  const DeploymentRecord bad = Deploy(
      r, v1, "web-2",
      {Step::kAssigned, Step::kDownloading, Step::kVerified, Step::kInstalling, Step::kActivating,
       Step::kHealthChecking, Step::kFailed, Step::kRollingBack, Step::kRolledBack},
      "connection refused on :8080");
  Close(r);
  auto snapshot = [&] {
    return store_->Read([&](soci::session& sql) -> Result<std::string> {
      nlohmann::json out;
      out["failure_outputs"] = FailureOutputs(sql, r.id);
      UpgradeFilter filter;
      filter.release_id = r.id;
      for (const UpgradeRecord& u : ListUpgradeRecords(sql, filter)) {
        out["upgrade_records"].push_back(u.ToJson());
      }
      for (const DeploymentRecord& d : ListDeployments(sql, r.id)) {
        out["deployments"].push_back(d.ToJson());
      }
      return out.dump();
    });
  };
  const auto before = snapshot();
  ASSERT_TRUE(before) << before.error().message();
  ASSERT_NE(before->find("connection refused on :8080"), std::string::npos);
  ASSERT_EQ(Count("SELECT COUNT(*) FROM deployment_events"), 16);

  Pass(10 * kDay);
  EXPECT_EQ(Gc(30).events, 0u);  // not old yet
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deployment_events"), 16);

  Pass(30 * kDay);
  const GcSummary summary = Gc(30);
  EXPECT_EQ(summary.deployments, 2u);
  // web-1 keeps its last event; web-2 its last and its failure with output.
  EXPECT_EQ(summary.events, 16u - 3u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deployment_events"), 3);
  const auto after = snapshot();
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_EQ(*after, *before);
  // The agent's acknowledgement still counts from the last sequence.
  EXPECT_EQ(Count(fmt::format("SELECT MAX(sequence) FROM deployment_events WHERE deployment = "
                              "'{}'",
                              ok.id)),
            7);
  EXPECT_EQ(Count(fmt::format("SELECT MAX(sequence) FROM deployment_events WHERE deployment = "
                              "'{}'",
                              bad.id)),
            9);
  EXPECT_EQ(Gc(30).events, 0u);  // nothing more to summarise
}

TEST_F(RetentionTest, GcIsAuditedAndTheChainStillVerifies) {
  const StoredPackage v1 = Upload("c3m-video", "V1.0.0.1");
  release::Release r = AddRelease(v1, release::ReleaseState::kApproved);
  Close(r);
  const long long entries = Count("SELECT COUNT(*) FROM audit_log");
  Pass(400 * kDay);
  const GcSummary summary = Gc(365);
  EXPECT_EQ(summary.packages.size(), 1u);
  auto audit = store_->Read(
      [](soci::session& sql) -> Result<std::vector<AuditEntry>> { return ListAudit(sql, {}); });
  ASSERT_TRUE(audit);
  ASSERT_EQ(static_cast<long long>(audit->size()), entries + 1);  // nothing removed, one added
  const AuditEntry& gc = audit->back();
  EXPECT_EQ(gc.action, "retention.gc");
  const auto detail = nlohmann::json::parse(gc.detail);
  EXPECT_EQ(detail["packages"], 1);
  EXPECT_EQ(detail["package_bytes"], v1.size);
  EXPECT_EQ(detail["retention_days"], 365);
  auto verified = store_->Read(
      [](soci::session& sql) -> Result<AuditVerification> { return VerifyAudit(sql); });
  ASSERT_TRUE(verified);
  EXPECT_TRUE(verified->intact) << verified->reason;
  EXPECT_EQ(verified->count, entries + 1);
}

TEST_F(RetentionTest, ZeroDaysKeepsEverything) {
  const StoredPackage v1 = Upload("c3m-video", "V1.0.0.1");
  release::Release r = AddRelease(v1, release::ReleaseState::kApproved);
  Close(r);
  Pass(4000 * kDay);
  const GcSummary summary = Gc(0);
  EXPECT_TRUE(summary.packages.empty());
  EXPECT_EQ(summary.packages_kept, 1u);
  EXPECT_TRUE(Stored(v1));
  EXPECT_NE(DescribeGc(summary).find("retention.days is 0"), std::string::npos);
}

TEST_F(RetentionTest, ThirtyDaysOfReleasesReachAPlateau) {
  FABU_SQLITE_ONLY();  // measures the SQLite file's pages
  // Retention of 5 days; each day one release of a new 256 KiB package,
  // deployed to both hosts with 16 KiB of hook output per host, closed the
  // same day; the hosts keep the last two versions; gc at the day's end.
  constexpr int kDays = 30;
  constexpr int kRetention = 5;
  const std::string output(16 * 1024, 'o');
  std::vector<std::uint64_t> sizes;
  std::vector<std::string> versions;
  for (int day = 1; day <= kDays; ++day) {
    const std::string version = fmt::format("V1.0.0.{}", day);
    versions.push_back(version);
    const StoredPackage p = Upload("c3m-video", version, 256 * 1024);
    release::Release r = AddRelease(p, release::ReleaseState::kDeploying);
    for (const char* host : {"web-1", "web-2"}) {
      Deploy(r, p, host,
             {Step::kAssigned, Step::kDownloading, Step::kVerified, Step::kInstalling,
              Step::kActivating, Step::kHealthChecking, Step::kSucceeded},
             output);
      std::vector<std::string> kept(versions.end() - std::min<std::size_t>(2, versions.size()),
                                    versions.end());
      Inventory(host, "c3m-video", version, kept);
    }
    Pass(kDay / 2);
    Close(r);
    Pass(kDay / 2);
    const GcSummary summary = Gc(kRetention);
    EXPECT_TRUE(summary.problems.empty());
    sizes.push_back(DataBytes());
  }
  for (int day = 0; day < kDays; ++day) {
    std::cout << "day " << day + 1 << ": " << sizes[day] << " bytes\n";
  }
  // Packages on disk: the retention period's and the hosts' rollback targets.
  EXPECT_LE(Count("SELECT COUNT(*) FROM packages"), kRetention + 2);
  // After twice the retention period, the directory no longer grows with the
  // packages and the hook output: from day 10 to day 30, less than what two
  // days of it weigh (the rows kept on purpose, audit entries, release
  // records, deployments and upgrade records, are a few KiB a day).
  const std::uint64_t settled = sizes[9];
  const std::uint64_t last = sizes[kDays - 1];
  const std::uint64_t one_day = 256 * 1024 + 2 * 16 * 1024;
  EXPECT_LT(last, settled + 2 * one_day) << "day 10: " << settled << ", day 30: " << last;
  // Without gc, 30 days of packages alone would be 30 * 256 KiB.
  EXPECT_LT(last, std::uint64_t{kDays} * 256 * 1024 / 2);
}

}  // namespace
}  // namespace fabu::coordinator
