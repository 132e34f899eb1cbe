// The canonical JSON writer against nlohmann::json::dump(), whose bytes the
// audit chain hashes: every byte class, UTF-8 valid and not, numbers at
// their limits, and keys out of order (common/canonical_json.hpp).
#include "coordinator/common/canonical_json.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace fabu::coordinator {
namespace {

using nlohmann::json;

// {"k": value} as each writes it, or "type_error" when it refuses.
std::string ByNlohmann(const std::string& value) {
  try {
    return json{{"k", value}}.dump();
  } catch (const json::type_error&) {
    return "type_error";
  }
}
std::string ByWriter(const std::string& value) {
  try {
    CanonicalJsonWriter out;
    out.String("k", value);
    return out.Finish();
  } catch (const json::type_error&) {
    return "type_error";
  }
}

std::string Hex(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

TEST(CanonicalJsonTest, EveryByteAloneIsWrittenAsNlohmannWritesIt) {
  // Given each of the 256 byte values alone, and between other text, we
  // should write what nlohmann writes; bytes 0x80 and up alone are not
  // UTF-8, and both refuse them.
  for (int b = 0; b < 256; ++b) {
    const std::string alone(1, static_cast<char>(b));
    const std::string within = "a" + alone + "z";
    EXPECT_EQ(ByWriter(alone), ByNlohmann(alone)) << "byte " << Hex(alone);
    EXPECT_EQ(ByWriter(within), ByNlohmann(within)) << "byte " << Hex(alone);
    if (b >= 0x80) {
      EXPECT_EQ(ByWriter(alone), "type_error") << "byte " << Hex(alone);
    }
  }
}

TEST(CanonicalJsonTest, MixedAndMultiByteStringsAreWrittenAsNlohmannWritesThem) {
  std::string all_ascii;
  for (int b = 0; b < 0x80; ++b) all_ascii.push_back(static_cast<char>(b));
  const std::vector<std::string> cases = {
      "",
      all_ascii,
      std::string(all_ascii.rbegin(), all_ascii.rend()),
      "plain-host-0001.example.net:8443/a?b=c&d=e~",
      "say \"hi\"",
      "C:\\path\\to",
      "line\nbreak\r\ttab\b\f",
      std::string("nul\0inside", 10),
      "\x7f",
      "Zo\xc3\xab \xc3\x9cnal",                          // 2 bytes
      "\xe2\x82\xac 20 \xe2\x80\x9equoted\xe2\x80\x9c",  // 3 bytes
      "\xf0\x9f\x98\x80\xf0\x9f\x9a\x80",                // 4 bytes
      "\xef\xbb\xbf"
      "BOM",
      "\xf4\x8f\xbf\xbf",  // U+10FFFF
      "\xe2\x82",          // truncated
      "\xc0\xaf",          // overlong '/'
      "\xed\xa0\x80",      // a surrogate
      "\xf4\x90\x80\x80",  // beyond U+10FFFF
      "\x80"
      "continuation first",
      "ok \xff then ok",
  };
  for (const std::string& value : cases) {
    EXPECT_EQ(ByWriter(value), ByNlohmann(value)) << Hex(value);
  }
}

TEST(CanonicalJsonTest, RandomStringsAreWrittenAsNlohmannWritesThem) {
  // Bytes drawn mostly from the classes that matter: the escaped ones, the
  // boundaries of printable ASCII, and the lead and continuation bytes of
  // UTF-8 (so that some sequences are valid and some are not).
  const std::string alphabet =
      std::string("\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x20\"\\/\x7e\x7f", 14) +
      "aZ09\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x80\xbf\xc0\xff";
  std::mt19937 random(20260301);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1), length(0, 12);
  int refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string value;
    for (std::size_t n = length(random); n > 0; --n) value.push_back(alphabet[pick(random)]);
    const std::string expected = ByNlohmann(value);
    refused += expected == "type_error";
    ASSERT_EQ(ByWriter(value), expected) << Hex(value);
  }
  EXPECT_GT(refused, 0);  // invalid UTF-8 was tried
}

TEST(CanonicalJsonTest, AnObjectOfEveryKindOfValueIsWrittenAsNlohmannWritesIt) {
  const json nested = {{"b", {1, 2.5, "x\n"}}, {"a", nullptr}};
  const json expected = {
      {"B-upper", "first: upper case sorts before lower"},
      {"a", ""},
      {"aa", "a prefix sorts first"},
      {"false", false},
      {"int_max", std::numeric_limits<std::int64_t>::max()},
      {"int_min", std::numeric_limits<std::int64_t>::min()},
      {"nested", nested},
      {"null", nullptr},
      {"true", true},
      {"uint_max", std::numeric_limits<std::uint64_t>::max()},
      {"zero", 0},
  };
  CanonicalJsonWriter out(8);  // too small: it grows
  out.String("B-upper", "first: upper case sorts before lower");
  out.String("a", "");
  out.String("aa", "a prefix sorts first");
  out.Bool("false", false);
  out.Number("int_max", std::numeric_limits<std::int64_t>::max());
  out.Number("int_min", std::numeric_limits<std::int64_t>::min());
  out.Json("nested", nested);
  out.Null("null");
  out.Bool("true", true);
  out.Number("uint_max", std::numeric_limits<std::uint64_t>::max());
  out.Number("zero", 0);
  EXPECT_EQ(out.Finish(), expected.dump());
}

TEST(CanonicalJsonTest, AnEmptyObjectIsTwoBraces) {
  CanonicalJsonWriter out;
  EXPECT_EQ(out.Finish(), json::object().dump());
}

TEST(CanonicalJsonTest, KeysOutOfOrderRepeatedOrNeedingEscapesAreRefused) {
  // Given keys nlohmann would have sorted, we should refuse rather than
  // write a text no json object dumps to.
  {
    CanonicalJsonWriter out;
    out.String("b", "1");
    EXPECT_THROW(out.String("a", "2"), std::logic_error);
  }
  {
    CanonicalJsonWriter out;
    out.Number("seq", 1);
    EXPECT_THROW(out.Number("seq", 2), std::logic_error);
  }
  {
    CanonicalJsonWriter out;
    out.String("a", "1");
    EXPECT_THROW(out.String("B", "2"), std::logic_error);  // 'B' < 'a'
  }
  {
    CanonicalJsonWriter out;
    EXPECT_THROW(out.Null("say \"what\""), std::logic_error);
    EXPECT_THROW(out.Null("caf\xc3\xa9"), std::logic_error);
  }
}

template <typename T>
concept WritesBool = requires(CanonicalJsonWriter out, T value) {
  out.Bool("k", value);
};
template <typename T>
concept WritesNumber = requires(CanonicalJsonWriter out, T value) {
  out.Number("k", value);
};
static_assert(WritesBool<bool>);
static_assert(!WritesBool<const char*>, "a string literal is not a bool");
static_assert(!WritesBool<int>);
static_assert(WritesNumber<std::int64_t> && WritesNumber<std::uint64_t> && WritesNumber<int>);
static_assert(!WritesNumber<bool>, "nlohmann writes a bool as true/false");

}  // namespace
}  // namespace fabu::coordinator
