// The journal: durable, exclusive, read back as written.
#include "agent/journal/journal.hpp"

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {
namespace {

using fabu::testing::ReadFile;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;

DeploymentEvent Event(const std::string& deployment, std::uint64_t sequence, Step step) {
  return DeploymentEvent{deployment, sequence, step, std::nullopt, "app",
                         "V1.0.0.0", "",       "",   1'800'000'000};
}

InFlightDeployment InFlight() {
  return InFlightDeployment{
      "d1",       DeploymentKind::kInstall, "/p/app.fabu", "abc", "app", "V1.1.0.0",
      "V1.0.0.0", Step::kVerified,          std::nullopt,  1};
}

TEST(JournalTest, AbsentJournalIsEmpty) {
  TempDir dir;
  auto journal = Journal::Open(dir / "data");
  ASSERT_TRUE(journal) << journal.error().message();
  EXPECT_FALSE(journal->in_flight());
  EXPECT_TRUE(journal->pending_events().empty());
  EXPECT_FALSE(journal->last());
}

TEST(JournalTest, ReadsBackWhatWasRecordedAfterReopening) {
  TempDir dir;
  InFlightDeployment expected = InFlight();
  std::vector<DeploymentEvent> events;
  {
    auto journal = Journal::Open(dir / "data");
    ASSERT_TRUE(journal);
    events.push_back(Event("d1", 1, Step::kVerified));
    ASSERT_TRUE(journal->Begin(expected, events.back()));
    ASSERT_TRUE(journal->Record(Step::kPreInstall, std::nullopt));
    auto failed = Event("d1", 2, Step::kFailed);
    failed.failed_step = Step::kInstalling;
    failed.message = "pre_install hook exited with status 1";
    failed.output = std::string("bad utf-8: \xff\n");
    events.push_back(failed);
    ASSERT_TRUE(journal->Record(Step::kFailed, failed, Step::kInstalling));
  }
  auto journal = Journal::Open(dir / "data");
  ASSERT_TRUE(journal) << journal.error().message();
  expected.step = Step::kFailed;
  expected.failed_step = Step::kInstalling;
  expected.next_sequence = 3;
  EXPECT_EQ(journal->in_flight(), expected);
  ASSERT_EQ(journal->pending_events().size(), 2u);
  EXPECT_EQ(journal->pending_events()[0], events[0]);
  EXPECT_EQ(journal->pending_events()[1].message, events[1].message);
  EXPECT_EQ(journal->pending_events()[1].failed_step, Step::kInstalling);
  EXPECT_EQ(journal->NextSequence("d1"), 3u);
  EXPECT_EQ(journal->NextSequence("d2"), 1u);
}

TEST(JournalTest, FinishKeepsTheSummaryAndTheSequence) {
  TempDir dir;
  auto journal = Journal::Open(dir / "data");
  ASSERT_TRUE(journal->Begin(InFlight(), Event("d1", 1, Step::kVerified)));
  ASSERT_TRUE(journal->Record(Step::kSucceeded, Event("d1", 2, Step::kSucceeded)));
  ASSERT_TRUE(
      journal->Finish({"d1", DeploymentKind::kInstall, "app", Step::kSucceeded, "V1.1.0.0", 0}));
  ASSERT_TRUE(journal->Acknowledge("d1", 2));
  EXPECT_TRUE(journal->pending_events().empty());
  EXPECT_FALSE(journal->in_flight());
  EXPECT_EQ(journal->last()->last_sequence, 2u);
  EXPECT_EQ(journal->NextSequence("d1"), 3u);
}

TEST(JournalTest, AcknowledgeDropsOnlyTheEventsReceived) {
  TempDir dir;
  auto journal = Journal::Open(dir / "data");
  ASSERT_TRUE(journal->Begin(InFlight(), Event("d1", 1, Step::kVerified)));
  ASSERT_TRUE(journal->Record(Step::kInstalling, Event("d1", 2, Step::kInstalling)));
  ASSERT_TRUE(journal->Record(Step::kActivating, Event("d1", 3, Step::kActivating)));
  ASSERT_TRUE(journal->Acknowledge("d1", 2));
  ASSERT_EQ(journal->pending_events().size(), 1u);
  EXPECT_EQ(journal->pending_events()[0].sequence, 3u);
  ASSERT_TRUE(journal->Acknowledge("other", 10));
  EXPECT_EQ(journal->pending_events().size(), 1u);
}

TEST(JournalTest, AcknowledgementsReachTheFileWithTheNextWriteOrWhenIdle) {
  TempDir dir;
  {
    auto journal = Journal::Open(dir / "data");
    ASSERT_TRUE(journal->Begin(InFlight(), Event("d1", 1, Step::kVerified)));
    ASSERT_TRUE(journal->Record(Step::kInstalling, Event("d1", 2, Step::kInstalling)));
    ASSERT_TRUE(journal->Acknowledge("d1", 2));
  }
  // Lost with the process (a crash): the two events are sent again, which
  // their receiver stores once.
  {
    auto journal = Journal::Open(dir / "data");
    ASSERT_TRUE(journal);
    EXPECT_EQ(journal->pending_events().size(), 2u);
    ASSERT_TRUE(journal->Acknowledge("d1", 2));
    ASSERT_TRUE(journal->Record(Step::kActivating, Event("d1", 3, Step::kActivating)));
  }
  // Carried by the next step's write.
  {
    auto journal = Journal::Open(dir / "data");
    ASSERT_EQ(journal->pending_events().size(), 1u);
    EXPECT_EQ(journal->pending_events()[0].sequence, 3u);
    ASSERT_TRUE(journal->Acknowledge("d1", 3));
    ASSERT_TRUE(journal->WriteAcknowledged());
  }
  // Or written when idle.
  auto journal = Journal::Open(dir / "data");
  EXPECT_TRUE(journal->pending_events().empty());
  EXPECT_EQ(journal->NextSequence("d1"), 4u);
}

TEST(JournalTest, SecondDeploymentIsRefusedWhileOneIsInFlight) {
  TempDir dir;
  auto journal = Journal::Open(dir / "data");
  ASSERT_TRUE(journal->Begin(InFlight(), Event("d1", 1, Step::kVerified)));
  auto second = InFlight();
  second.deployment = "d2";
  EXPECT_FALSE(journal->Begin(second, Event("d2", 1, Step::kVerified)));
}

TEST(JournalTest, OneAgentPerDataDirectory) {
  TempDir dir;
  auto first = Journal::Open(dir / "data");
  ASSERT_TRUE(first);
  auto second = Journal::Open(dir / "data");
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message().find("another fabu-agent"), std::string::npos);
}

TEST(JournalTest, DamagedJournalIsRefusedNamingTheFile) {
  TempDir dir;
  WriteFile(dir / "data/journal.json", "{\"format\": 1, \"events\": [");
  auto journal = Journal::Open(dir / "data");
  ASSERT_FALSE(journal);
  EXPECT_NE(journal.error().message().find("journal.json is damaged"), std::string::npos)
      << journal.error().message();
}

TEST(JournalTest, ASequenceThatIsNoWholeNumberIsRefusedNamingTheField) {
  TempDir dir;
  {
    auto journal = Journal::Open(dir / "data");
    ASSERT_TRUE(journal);
    ASSERT_TRUE(journal->Begin(InFlight(), Event("d1", 1, Step::kVerified)));
  }
  std::string text = ReadFile(dir / "data/journal.json");
  const std::string field = "\"next_sequence\": 2";
  const auto at = text.find(field);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, field.size(), "\"next_sequence\": 9.7e28");
  WriteFile(dir / "data/journal.json", text);
  auto journal = Journal::Open(dir / "data");
  ASSERT_FALSE(journal);
  EXPECT_NE(
      journal.error().message().find("is damaged: in_flight.next_sequence: must be a whole number"),
      std::string::npos)
      << journal.error().message();
}

TEST(JournalTest, NoTemporaryFileIsLeftBehind) {
  TempDir dir;
  auto journal = Journal::Open(dir / "data");
  ASSERT_TRUE(journal->Append(Event("d1", 1, Step::kFailed)));
  for (const auto& entry : std::filesystem::directory_iterator(dir / "data")) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos);
  }
  EXPECT_NE(ReadFile(dir / "data/journal.json").find("\"format\": 1"), std::string::npos);
}

}  // namespace
}  // namespace fabu::agent::testing
