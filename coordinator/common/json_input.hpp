// Strict reading of JSON request bodies.
//
// Every error names the field path ("role", "plan.purpose", "waves[2]") and
// what was wrong, so the server can answer 400 with a message a person can
// act on. Unknown fields are refused: a typo must not be silently ignored.
// Pure functions; nlohmann exceptions never escape.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::coordinator {

// Parses a request body that must be one JSON value.
Result<nlohmann::json> ParseJsonBody(std::string_view body);

enum class JsonType { kString, kInteger, kNumber, kBoolean, kObject, kArray, kAny };

std::string_view JsonTypeName(JsonType type);

struct FieldRule {
  std::string_view name;
  JsonType type;
  bool required = false;
};

// Checks that `value` (found at `path`; "" for the body itself) is an object
// whose members all appear in `rules` with the right types, and that every
// required member is present. Nulls count as absent for optional fields.
Result<void> CheckObject(const nlohmann::json& value, std::string_view path,
                         std::initializer_list<FieldRule> rules);

// "a.b" from ("a", "b"); "b" from ("", "b").
std::string FieldPath(std::string_view parent, std::string_view name);

}  // namespace fabu::coordinator
