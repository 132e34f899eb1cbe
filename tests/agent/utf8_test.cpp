// Foreign bytes made fit for JSON: ill-formed UTF-8 replaced, tails cut on
// character boundaries.
#include "agent/common/utf8.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "agent/hooks/hook_runner.hpp"

namespace fabu::agent::testing {
namespace {

const std::string kFffd(kReplacementCharacter);

TEST(Utf8Test, ValidTextIsUnchanged) {
  const std::string text = "plain ascii, 中文, ελληνικά, emoji \xF0\x9F\x98\x80, nul \0 end";
  EXPECT_EQ(ValidUtf8(text), text);
}

TEST(Utf8Test, IllFormedSequencesAreReplaced) {
  EXPECT_EQ(ValidUtf8("a\xFF"
                      "b"),
            "a" + kFffd + "b");
  EXPECT_EQ(ValidUtf8("\x80\x80"), kFffd + kFffd);  // stray continuation bytes
  EXPECT_EQ(ValidUtf8("\xE4\xB8"
                      "x"),
            kFffd + "x");                                                   // a character cut short
  EXPECT_EQ(ValidUtf8("end\xE4\xB8"), "end" + kFffd);                       // ... at the very end
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), kFffd + kFffd);                          // overlong '/'
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);              // a surrogate
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // above U+10FFFF
}

TEST(Utf8Test, RandomBytesAlwaysBecomeSerializableText) {
  std::mt19937 random(42);
  for (int round = 0; round < 200; ++round) {
    std::string bytes(1 + random() % 300, '\0');
    for (auto& b : bytes) b = static_cast<char>(random());
    const std::string valid = ValidUtf8(bytes);
    EXPECT_NO_THROW((void)nlohmann::json(valid).dump());
    EXPECT_EQ(ValidUtf8(valid), valid);
  }
}

TEST(Utf8Test, TailsStartOnACharacterBoundary) {
  const std::string text = "ab中文";  // 2 + 3 + 3 bytes
  EXPECT_EQ(Utf8Tail(text, 8), text);
  EXPECT_EQ(Utf8Tail(text, 5), "文");  // "\xB8\xAD" of 中 dropped
  EXPECT_EQ(Utf8Tail(text, 3), "文");
  EXPECT_EQ(Utf8Tail(text, 2), "");
  EXPECT_EQ(ValidUtf8Tail("\xFF\xFF\xFF", 4), kFffd);  // longer once replaced: cut again
}

TEST(Utf8Test, QuotedEscapesControlCharactersAndCuts) {
  EXPECT_EQ(Quoted("../.."), "\"../..\"");
  EXPECT_EQ(Quoted("a\nb\x1b"), "\"a\\nb\\u001b\"");
  EXPECT_EQ(Quoted(std::string(300, 'x'), 4), "\"xxxx...\"");
}

TEST(OutputTailTest, Utf8TextOfALongMultiByteOutputIsWholeCharacters) {
  OutputTail tail(10);
  std::string chinese;
  for (int i = 0; i < 100; ++i) chinese += "中文";
  tail.Append(chinese);  // the last 10 bytes start inside a character
  EXPECT_EQ(tail.text().size(), 10u);
  EXPECT_EQ(tail.Utf8Text(), "文中文");
  OutputTail short_tail(10);
  short_tail.Append("\xB8\xAD ok");  // nothing was cut: the bytes are replaced, not dropped
  EXPECT_EQ(short_tail.Utf8Text(), kFffd + kFffd + " ok");
}

}  // namespace
}  // namespace fabu::agent::testing
