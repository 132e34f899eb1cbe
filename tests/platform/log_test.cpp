// platform/log: what each format makes of a line and its fields. The journal
// itself is not running in the test container (no systemd-journald, so
// `journalctl` has nothing to read): the entry's fields are checked as
// built, and sending is left to the daemons' fallback tests.
#include "platform/log/log.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fabu::platform::log {
namespace {

TEST(LogTest, FormatsAreNamedAndOthersRefusedNamingThem) {
  EXPECT_EQ(ParseFormat("text").value(), Format::kText);
  EXPECT_EQ(ParseFormat("json").value(), Format::kJson);
  EXPECT_EQ(ParseFormat("journal").value(), Format::kJournal);
  auto bad = ParseFormat("syslog");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message(), "log format \"syslog\" is not one of text, json, journal");
}

TEST(LogTest, JournalEntryCarriesPriorityIdentifierAndTheFieldsThatAreSet) {
  const Fields fields{.release = "R-7", .host = "web-1", .request_id = "", .deployment = "D-12"};
  const std::vector<std::string> entry =
      JournalFields("fabu-coordinator", Level::kWarning, "wave 2 failed", fields);
  EXPECT_EQ(entry, (std::vector<std::string>{
                       "MESSAGE=wave 2 failed", "PRIORITY=4", "SYSLOG_IDENTIFIER=fabu-coordinator",
                       "FABU_RELEASE=R-7", "FABU_HOST=web-1", "FABU_DEPLOYMENT=D-12"}));
  EXPECT_EQ(Priority(Level::kDebug), 7);
  EXPECT_EQ(Priority(Level::kInfo), 6);
  EXPECT_EQ(Priority(Level::kError), 3);
  EXPECT_EQ(Priority(Level::kCritical), 2);
  const auto request = JournalFields("fabu-coordinator", Level::kInfo, "GET /healthz -> 200",
                                     Fields().RequestId("00ab"));
  EXPECT_EQ(request.back(), "FABU_REQUEST_ID=00ab");
  EXPECT_EQ(request.size(), 4u);
}

TEST(LogTest, JsonLineIsOneParsableLineWithTheFields) {
  const std::string line =
      JsonLine("2026-12-05T19:12:13.123Z", "fabu-agent", Level::kError,
               "hook said \"no\"\nand more", Fields().Release("R-7").Deployment("D-3"));
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  const auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["time"], "2026-12-05T19:12:13.123Z");
  EXPECT_EQ(parsed["level"], "error");
  EXPECT_EQ(parsed["service"], "fabu-agent");
  EXPECT_EQ(parsed["message"], "hook said \"no\"\nand more");
  EXPECT_EQ(parsed["release"], "R-7");
  EXPECT_EQ(parsed["deployment"], "D-3");
  EXPECT_FALSE(parsed.contains("host"));
  EXPECT_FALSE(parsed.contains("request_id"));
  // Bytes that are not UTF-8 (a name a peer sent) do not break the line.
  const auto odd = nlohmann::json::parse(JsonLine("t", "x", Level::kInfo, "bad \xff byte", {}));
  EXPECT_EQ(odd["message"], "bad \xEF\xBF\xBD byte");
}

TEST(LogTest, ScopesNestAndRestoreTheOuterFields) {
  EXPECT_EQ(TextSuffix(Current()), "");
  {
    const Scope host(Fields().Host("web-1"));
    EXPECT_EQ(TextSuffix(Current()), " host=web-1");
    {
      const Scope deployment(Fields().Release("R-7").Deployment("D-12"));
      EXPECT_EQ(TextSuffix(Current()), " release=R-7 host=web-1 deployment=D-12");
    }
    EXPECT_EQ(TextSuffix(Current()), " host=web-1");
  }
  EXPECT_EQ(TextSuffix(Current()), "");
}

TEST(LogTest, TheJournalIsTheDefaultOnlyWhenStderrIsItsStream) {
  struct stat st {};
  ASSERT_EQ(::fstat(2, &st), 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_EQ(DefaultFormat(), Format::kJournal);
  // Inherited by a process whose stderr went elsewhere: not the journal.
  ::setenv("JOURNAL_STREAM", "1:2", 1);
  EXPECT_EQ(DefaultFormat(), Format::kText);
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_EQ(DefaultFormat(), Format::kText);
}

TEST(LogTest, NowUtcIsRfc3339WithMilliseconds) {
  const std::string now = NowUtc();
  ASSERT_EQ(now.size(), 24u) << now;
  EXPECT_EQ(now[10], 'T');
  EXPECT_EQ(now[19], '.');
  EXPECT_EQ(now.back(), 'Z');
}

}  // namespace
}  // namespace fabu::platform::log
