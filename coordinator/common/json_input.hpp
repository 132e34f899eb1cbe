// Strict reading of JSON request bodies.
//
// Every error names the field path ("role", "plan.purpose", "waves[2]") and
// what was wrong, so the server can answer 400 with a message a person can
// act on. Unknown fields are refused: a typo must not be silently ignored.
// Pure functions; nlohmann exceptions never escape.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::coordinator {

// Parses a request body that must be one JSON value. A refusal names the
// field path where the parser stopped ("ttl", "waves[2]") and never quotes
// the body's bytes: invalid UTF-8, a number beyond a double's range (1e400)
// and a syntax error are all kInvalidArgument (400).
Result<nlohmann::json> ParseJsonBody(std::string_view body);

// At most `max_bytes` of `text` as valid UTF-8 (each invalid byte becomes
// U+FFFD, control characters a '?'), with "..." and the full size appended
// when cut: what may be quoted back to a caller or recorded of their input.
std::string SafeExcerpt(std::string_view text, std::size_t max_bytes = 64);

// JSON text of `value` that never throws on invalid UTF-8 in its strings
// (such bytes become U+FFFD): for answers and records holding input.
std::string DumpJson(const nlohmann::json& value);

enum class JsonType { kString, kInteger, kNumber, kBoolean, kObject, kArray, kAny };

std::string_view JsonTypeName(JsonType type);

// Integers the JSON input layer accepts for a kInteger field by default:
// what a signed 64-bit integer holds.
inline constexpr std::int64_t kIntegerMin = std::numeric_limits<std::int64_t>::min();
inline constexpr std::int64_t kIntegerMax = std::numeric_limits<std::int64_t>::max();

struct FieldRule {
  std::string_view name;
  JsonType type;
  bool required = false;
  // kInteger: the inclusive range (an unsigned value above kIntegerMax is
  // always refused, so a field read with get<std::int64_t>() never wraps).
  // kNumber: the value must be finite and within [min, max] as well.
  std::int64_t min = kIntegerMin;
  std::int64_t max = kIntegerMax;
};

// Checks that `value` (found at `path`; "" for the body itself) is an object
// whose members all appear in `rules` with the right types, and that every
// required member is present. Nulls count as absent for optional fields.
// Numbers outside their rule's range are refused naming the field and the range.
Result<void> CheckObject(const nlohmann::json& value, std::string_view path,
                         std::initializer_list<FieldRule> rules);

// "a.b" from ("a", "b"); "b" from ("", "b").
std::string FieldPath(std::string_view parent, std::string_view name);

}  // namespace fabu::coordinator
