// What the agent's journal promises when the disk fails it or the power goes
// (docs/architecture.md, "The agent's journal and recovery"): a write that
// fails says which file and what failed, and leaves the journal as it was,
// in memory and on disk; a crash in the middle of a write leaves the previous
// state; nothing half-written is taken for the journal. And a crash inside a
// deployment step, with what was not synced lost, is recovered as the page
// says: before activation cleaned up and `failed`, from activation on rolled
// back to the previous release.
#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "agent/deploy/deployer.hpp"
#include "agent/journal/journal.hpp"
#include "platform/fs/files.hpp"
#include "tests/agent/agent_fixture.hpp"
#include "tests/agent/deployer_fixture.hpp"
#include "tests/support/faulty_fs.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {
namespace {

namespace fs = std::filesystem;
using fabu::testing::FaultyFileSystem;
using fabu::testing::ReadFile;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;
using Op = FaultyFileSystem::Op;
using protocol::Version;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

DeploymentEvent Event(std::uint64_t sequence, Step step) {
  return DeploymentEvent{"d1",       sequence, step, std::nullopt, "app",
                         "V1.1.0.0", "",       "",   1'800'000'000};
}

InFlightDeployment InFlight() {
  return InFlightDeployment{
      "d1",       DeploymentKind::kInstall, "/p/app.fabu", "abc", "app", "V1.1.0.0",
      "V1.0.0.0", Step::kVerified,          std::nullopt,  1};
}

// Names in `dir` that start with "journal.json." (temp files of a write).
std::vector<std::string> JournalTempFiles(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("journal.json.")) names.push_back(name);
  }
  return names;
}

// A journal with a deployment in flight at `installing`, two events queued.
void StartDeployment(Journal& journal) {
  ASSERT_TRUE(journal.Begin(InFlight(), Event(1, Step::kVerified)));
  ASSERT_TRUE(journal.Record(Step::kInstalling, Event(2, Step::kInstalling)));
}

struct WriteFault {
  const char* name;
  Op op;
  int error;
  const char* what;    // the step the message names
  const char* reason;  // strerror(error)
};

class JournalWriteFaultTest : public ::testing::TestWithParam<WriteFault> {
 protected:
  TempDir dir_;
  FaultyFileSystem faulty_;
  platform::ScopedFileSystem installed_{faulty_};
};

TEST_P(JournalWriteFaultTest, FailedWriteNamesTheFileAndKeepsThePreviousState) {
  const WriteFault& fault = GetParam();
  const fs::path data = dir_ / "data";
  {
    auto journal = Journal::Open(data);
    ASSERT_TRUE(journal) << journal.error().message();
    StartDeployment(*journal);
    const std::string before = journal->Serialize();

    faulty_.Fail(fault.op, "journal.json", fault.error);
    auto recorded = journal->Record(Step::kActivating, Event(3, Step::kActivating));
    ASSERT_FALSE(recorded);
    const std::string& message = recorded.error().message();
    EXPECT_EQ(recorded.error().code(), ErrorCode::kIo);
    EXPECT_TRUE(Contains(message, "writing the agent journal")) << message;
    EXPECT_TRUE(Contains(message, (data / "journal.json").string())) << message;
    EXPECT_TRUE(Contains(message, fault.what)) << message;
    EXPECT_TRUE(Contains(message, fault.reason)) << message;

    // In memory: as before the write.
    EXPECT_EQ(journal->Serialize(), before);
    EXPECT_EQ(journal->in_flight()->step, Step::kInstalling);
    EXPECT_EQ(journal->NextSequence("d1"), 3u);
    // On disk: the previous journal, whole, and no temp file beside it.
    EXPECT_EQ(ReadFile(data / "journal.json"), before);
    EXPECT_TRUE(JournalTempFiles(data).empty());

    // The disk is back: the same step is written by a fresh temp file.
    ASSERT_TRUE(journal->Record(Step::kActivating, Event(3, Step::kActivating)));
  }
  auto reopened = Journal::Open(data);
  ASSERT_TRUE(reopened) << reopened.error().message();
  EXPECT_EQ(reopened->in_flight()->step, Step::kActivating);
  EXPECT_EQ(reopened->pending_events().size(), 3u);
}

TEST_P(JournalWriteFaultTest, FailedWriteLeavesThePreviousJournalReadableAfterARestart) {
  const WriteFault& fault = GetParam();
  const fs::path data = dir_ / "data";
  {
    auto journal = Journal::Open(data);
    ASSERT_TRUE(journal);
    StartDeployment(*journal);
    faulty_.Fail(fault.op, "journal.json", fault.error);
    ASSERT_FALSE(
        journal->Finish({"d1", DeploymentKind::kInstall, "app", Step::kSucceeded, "V1.1.0.0", 0}));
  }
  faulty_.LoseUnsyncedData();  // and the power went
  auto journal = Journal::Open(data);
  ASSERT_TRUE(journal) << journal.error().message();
  ASSERT_TRUE(journal->in_flight());
  EXPECT_EQ(journal->in_flight()->step, Step::kInstalling);
  EXPECT_FALSE(journal->last());
  EXPECT_EQ(journal->pending_events().size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Faults, JournalWriteFaultTest,
                         ::testing::Values(WriteFault{"FsyncEio", Op::kFsync, EIO, "fsync of",
                                                      "Input/output error"},
                                           WriteFault{"WriteEnospc", Op::kWrite, ENOSPC, "write to",
                                                      "No space left on device"},
                                           WriteFault{"RenameFails", Op::kRename, EIO, "rename of",
                                                      "Input/output error"}),
                         [](const ::testing::TestParamInfo<WriteFault>& param) {
                           return std::string(param.param.name);
                         });

// A crash at each point of a journal write; the previous state must come
// back, never a mix and never a half-written file.
struct CrashPointCase {
  const char* name;
  Op op;
  bool after;  // the call went through before the crash
};

class JournalCrashTest : public ::testing::TestWithParam<CrashPointCase> {
 protected:
  TempDir dir_;
  FaultyFileSystem faulty_;
  platform::ScopedFileSystem installed_{faulty_};
};

TEST_P(JournalCrashTest, CrashInsideAWriteLeavesThePreviousState) {
  const CrashPointCase& point = GetParam();
  const fs::path data = dir_ / "data";
  {
    auto journal = Journal::Open(data);
    ASSERT_TRUE(journal);
    StartDeployment(*journal);
    if (point.after) {
      faulty_.CrashAfter(point.op, "journal.json");
    } else {
      faulty_.CrashAt(point.op, "journal.json");
    }
    // Whether the call that died reports it or a later one does, the
    // journal must not claim the step was written.
    ASSERT_FALSE(journal->Record(Step::kActivating, Event(3, Step::kActivating)));
    EXPECT_TRUE(faulty_.crashed());
  }
  faulty_.LoseUnsyncedData();
  auto journal = Journal::Open(data);
  ASSERT_TRUE(journal) << journal.error().message();
  EXPECT_EQ(journal->in_flight()->step, Step::kInstalling);
  EXPECT_EQ(journal->pending_events().size(), 2u);
  EXPECT_TRUE(JournalTempFiles(data).empty());
}

INSTANTIATE_TEST_SUITE_P(Points, JournalCrashTest,
                         ::testing::Values(CrashPointCase{"AtTheWrite", Op::kWrite, false},
                                           CrashPointCase{"AfterTheWrite", Op::kWrite, true},
                                           CrashPointCase{"AtTheFileFsync", Op::kFsync, false},
                                           CrashPointCase{"AtTheRename", Op::kRename, false},
                                           CrashPointCase{"AfterTheRename", Op::kRename, true}),
                         [](const ::testing::TestParamInfo<CrashPointCase>& param) {
                           return std::string(param.param.name);
                         });

TEST(JournalTornFileTest, AHalfWrittenTempFileBesideTheJournalIsIgnored) {
  TempDir dir;
  const fs::path data = dir / "data";
  std::string whole;
  {
    auto journal = Journal::Open(data);
    ASSERT_TRUE(journal);
    StartDeployment(*journal);
    whole = journal->Serialize();
  }
  // What a crash in the middle of the next write could leave on disk: a temp
  // file with the first half of a newer journal.
  std::string newer = whole;
  newer.replace(newer.find("installing"), 10, "activating");
  WriteFile(data / "journal.json.tmp-Ab12Cd", newer.substr(0, newer.size() / 2));
  auto journal = Journal::Open(data);
  ASSERT_TRUE(journal) << journal.error().message();
  EXPECT_EQ(journal->in_flight()->step, Step::kInstalling);
  EXPECT_EQ(journal->Serialize(), whole);
}

// The deployment engine killed in the middle of a step, what was not synced
// lost, then restarted (Deployer::Recover).
class DeployerCrashInsideAStepTest : public DeployerFixture {
 protected:
  void SetUp() override {
    DeployerFixture::SetUp();
    settings_.health_check_attempts = 1;
  }

  BuiltPackage Package(const std::string& version) {
    PackageSpec spec;
    spec.version = version;
    spec.files = {{"bin/server", "server " + version + "\n"}};
    spec.hooks = AllRecordingHooks();
    return MakePackage(dir_.path(), spec, *key_);
  }

  Result<DeploymentOutcome> Deploy(const BuiltPackage& p, const std::string& id) {
    DeploymentRequest request;
    request.deployment = id;
    request.kind = DeploymentKind::kInstall;
    request.package = p.path;
    request.package_sha256 = p.sha256;
    return MakeDeployer().Deploy(request);
  }

  // Installs V1.0.0.0, then deploys V2.0.0.0 until the process dies right
  // after the call of `op` on `path_part`; the power goes, what was not
  // synced is lost, and the agent starts again.
  std::optional<DeploymentOutcome> CrashDuringV2AndRecover(Op op, const std::string& path_part) {
    auto v1 = Deploy(Package("V1.0.0.0"), "d1");
    EXPECT_TRUE(v1 && v1->final_step == Step::kSucceeded);
    faulty_.CrashAfter(op, path_part);
    auto v2 = Deploy(Package("V2.0.0.0"), "d2");
    EXPECT_FALSE(v2) << "the deployment went on after the crash";
    EXPECT_TRUE(faulty_.crashed());
    faulty_.LoseUnsyncedData();
    OpenJournal();
    EXPECT_TRUE(journal_->in_flight());
    sink_.events.clear();
    auto recovered = MakeDeployer().Recover();
    EXPECT_TRUE(recovered) << recovered.error().message();
    return recovered ? *recovered : std::nullopt;
  }

  FaultyFileSystem faulty_;
  platform::ScopedFileSystem installed_{faulty_};
};

TEST_F(DeployerCrashInsideAStepTest, CrashWhileInstallingCleansUpAndReportsFailed) {
  // releases/V2.0.0.0 placed by rename, the crash before its directory was
  // synced: the rename is lost, the tree is back in staging.
  auto outcome = CrashDuringV2AndRecover(Op::kRename, "releases/V2.0.0.0");
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->final_step, Step::kFailed) << outcome->message;
  EXPECT_TRUE(Contains(outcome->message, "agent restarted during")) << outcome->message;
  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
  EXPECT_FALSE(fs::exists(apps_ / "c3m-video/releases/V2.0.0.0"));
  EXPECT_TRUE(EntriesStartingWith(apps_ / "c3m-video", ".staging-").empty());
  ASSERT_FALSE(sink_.events.empty());
  EXPECT_EQ(sink_.events.back().step, Step::kFailed);
  EXPECT_FALSE(journal_->in_flight());
  EXPECT_EQ(journal_->last()->outcome, Step::kFailed);
}

TEST_F(DeployerCrashInsideAStepTest, CrashWhileActivatingRollsBackToThePreviousRelease) {
  // `current` switched to V2 by rename, the crash before the app directory
  // was synced: the switch is lost with the power, the journal says
  // `activating`.
  auto outcome = CrashDuringV2AndRecover(Op::kRename, "c3m-video/current");
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->final_step, Step::kRolledBack) << outcome->message;
  EXPECT_EQ(Current(), Version::Parse("V1.0.0.0").value());
  EXPECT_EQ(fs::read_symlink(apps_ / "c3m-video/current"), "releases/V1.0.0.0");
  EXPECT_FALSE(fs::exists(apps_ / "c3m-video/releases/V2.0.0.0"));
  EXPECT_EQ(sink_.Steps(), (std::vector<std::string>{"failed", "rolling_back", "rolled_back"}));
  EXPECT_FALSE(journal_->in_flight());
  EXPECT_EQ(journal_->last()->outcome, Step::kRolledBack);
  EXPECT_EQ(journal_->last()->current_version, "V1.0.0.0");
}

}  // namespace
}  // namespace fabu::agent::testing
