// The durable write (platform/fs/files.hpp) under each fault a disk can
// show: the old file stays whole, nothing half-written is left beside it,
// and the error says which file and what failed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "platform/fs/files.hpp"
#include "tests/support/faulty_fs.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::platform {
namespace {

namespace fs = std::filesystem;
using Op = testing::FaultyFileSystem::Op;
using fabu::testing::FaultyFileSystem;
using fabu::testing::ReadFile;
using fabu::testing::TempDir;
using fabu::testing::WriteFile;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Every name in `dir`, to show that no temp file was left.
std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::ranges::sort(names);
  return names;
}

class DurableWriteTest : public ::testing::Test {
 protected:
  void SetUp() override { WriteFile(file_, "old\n"); }

  TempDir dir_;
  fs::path file_ = dir_ / "state.json";
  FaultyFileSystem faulty_;
  ScopedFileSystem installed_{faulty_};
};

TEST_F(DurableWriteTest, ReplacesTheFileWithTheModeAsked) {
  ASSERT_TRUE(WriteFileDurably(file_, "new\n", 0600));
  EXPECT_EQ(ReadFile(file_), "new\n");
  EXPECT_EQ(fs::status(file_).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(Names(dir_.path()), std::vector<std::string>{"state.json"});
  EXPECT_EQ(faulty_.Calls(Op::kFsync), 2);  // the file, then its directory
}

TEST_F(DurableWriteTest, FailedFsyncLeavesTheOldFileAndNamesWhatFailed) {
  faulty_.Fail(Op::kFsync, "state.json.tmp-", EIO);
  auto written = WriteFileDurably(file_, "new\n");
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().code(), ErrorCode::kIo);
  const std::string& message = written.error().message();
  EXPECT_TRUE(Contains(message, "cannot write " + file_.string())) << message;
  EXPECT_TRUE(Contains(message, "fsync of")) << message;
  EXPECT_TRUE(Contains(message, "Input/output error")) << message;
  EXPECT_EQ(ReadFile(file_), "old\n");
  EXPECT_EQ(Names(dir_.path()), std::vector<std::string>{"state.json"});
}

TEST_F(DurableWriteTest, FullDiskLeavesTheOldFileAndNoTornTempFile) {
  faulty_.Fail(Op::kWrite, "state.json.tmp-", ENOSPC);
  auto written = WriteFileDurably(file_, std::string(4096, 'x'));
  ASSERT_FALSE(written);
  const std::string& message = written.error().message();
  EXPECT_TRUE(Contains(message, "cannot write " + file_.string())) << message;
  EXPECT_TRUE(Contains(message, "write to")) << message;
  EXPECT_TRUE(Contains(message, "No space left on device")) << message;
  EXPECT_EQ(faulty_.Calls(Op::kWrite), 2);  // a short write, then the failure
  EXPECT_EQ(ReadFile(file_), "old\n");
  EXPECT_EQ(Names(dir_.path()), std::vector<std::string>{"state.json"});
}

TEST_F(DurableWriteTest, FailedRenameLeavesTheOldFile) {
  faulty_.Fail(Op::kRename, "state.json", EIO);
  auto written = WriteFileDurably(file_, "new\n");
  ASSERT_FALSE(written);
  const std::string& message = written.error().message();
  EXPECT_TRUE(Contains(message, "cannot write " + file_.string())) << message;
  EXPECT_TRUE(Contains(message, "rename of")) << message;
  EXPECT_TRUE(Contains(message, "into place failed: Input/output error")) << message;
  EXPECT_EQ(ReadFile(file_), "old\n");
  EXPECT_EQ(Names(dir_.path()), std::vector<std::string>{"state.json"});
}

TEST_F(DurableWriteTest, FailedDirectoryFsyncIsReportedThoughTheNewFileIsInPlace) {
  // The second fsync whose path contains the directory is the directory's.
  faulty_.Fail(Op::kFsync, dir_.path().filename().string(), EIO, /*skip=*/1);
  auto written = WriteFileDurably(file_, "new\n");
  ASSERT_FALSE(written);
  EXPECT_TRUE(Contains(written.error().message(), "fsync of directory"))
      << written.error().message();
  EXPECT_EQ(ReadFile(file_), "new\n");  // visible, but not known to be durable
  EXPECT_EQ(Names(dir_.path()), std::vector<std::string>{"state.json"});
}

TEST_F(DurableWriteTest, TheNextWriteAfterAFaultStartsAfresh) {
  faulty_.Fail(Op::kFsync, "state.json.tmp-", EIO);
  ASSERT_FALSE(WriteFileDurably(file_, "lost\n"));
  ASSERT_TRUE(WriteFileDurably(file_, "new\n"));
  EXPECT_EQ(ReadFile(file_), "new\n");
  EXPECT_EQ(Names(dir_.path()), std::vector<std::string>{"state.json"});
}

TEST_F(DurableWriteTest, CrashBeforeTheFileIsSyncedKeepsTheOldContent) {
  faulty_.CrashAt(Op::kFsync, "state.json.tmp-");
  ASSERT_FALSE(WriteFileDurably(file_, "new\n"));
  EXPECT_TRUE(faulty_.crashed());
  faulty_.LoseUnsyncedData();
  EXPECT_EQ(ReadFile(file_), "old\n");
  EXPECT_EQ(Names(dir_.path()), std::vector<std::string>{"state.json"});
}

TEST_F(DurableWriteTest, CrashAfterTheRenameBeforeTheDirectorySyncKeepsTheOldContent) {
  faulty_.CrashAfter(Op::kRename, "state.json");
  auto written = WriteFileDurably(file_, "new\n");
  ASSERT_FALSE(written);  // the directory's fsync never happened
  EXPECT_EQ(ReadFile(file_), "new\n");
  faulty_.LoseUnsyncedData();
  EXPECT_EQ(ReadFile(file_), "old\n");
  EXPECT_EQ(Names(dir_.path()), std::vector<std::string>{"state.json"});
}

TEST_F(DurableWriteTest, WhatWasSyncedSurvivesACrash) {
  ASSERT_TRUE(WriteFileDurably(file_, "new\n"));
  faulty_.LoseUnsyncedData();
  EXPECT_EQ(ReadFile(file_), "new\n");
  EXPECT_EQ(Names(dir_.path()), std::vector<std::string>{"state.json"});
}

TEST_F(DurableWriteTest, DataWrittenWithoutFsyncIsLostInACrash) {
  UniqueFd fd(
      CurrentFileSystem().Open((dir_ / "log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(WriteAll(fd.get(), "first\n", dir_ / "log"));
  ASSERT_EQ(CurrentFileSystem().Fsync(fd.get()), 0);
  ASSERT_TRUE(SyncDirectory(dir_.path()));
  ASSERT_TRUE(WriteAll(fd.get(), "second\n", dir_ / "log"));
  fd.reset();
  faulty_.LoseUnsyncedData();
  EXPECT_EQ(ReadFile(dir_ / "log"), "first\n");
}

TEST_F(DurableWriteTest, NewFileRefusesToReplaceOne) {
  auto written = WriteNewFileDurably(file_, "secret", 0600);
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(ReadFile(file_), "old\n");
}

TEST_F(DurableWriteTest, NewFileWithAFailedFsyncIsRemoved) {
  faulty_.Fail(Op::kFsync, "key", EIO);
  auto written = WriteNewFileDurably(dir_ / "key", "secret", 0600);
  ASSERT_FALSE(written);
  EXPECT_TRUE(Contains(written.error().message(), "fsync failed: Input/output error"));
  EXPECT_FALSE(fs::exists(dir_ / "key"));
}

TEST(UniqueFdTest, ClosesOnceAndMoves) {
  UniqueFd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(a.valid());
  const int raw = a.get();
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(b.get(), raw);
  UniqueFd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_EQ(c.Close(), 0);
  EXPECT_FALSE(c.valid());
  EXPECT_EQ(c.Close(), 0);
}

}  // namespace
}  // namespace fabu::platform
