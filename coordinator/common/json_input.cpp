#include "coordinator/common/json_input.hpp"

#include <fmt/format.h>

namespace fabu::coordinator {
namespace {

bool HasType(const nlohmann::json& value, JsonType type) {
  switch (type) {
    case JsonType::kString:
      return value.is_string();
    case JsonType::kInteger:
      return value.is_number_integer();
    case JsonType::kNumber:
      return value.is_number();
    case JsonType::kBoolean:
      return value.is_boolean();
    case JsonType::kObject:
      return value.is_object();
    case JsonType::kArray:
      return value.is_array();
    case JsonType::kAny:
      return true;
  }
  return false;
}

std::string_view Describe(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a number";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::object:
      return "an object";
    default:
      return "something else";
  }
}

}  // namespace

std::string_view JsonTypeName(JsonType type) {
  switch (type) {
    case JsonType::kString:
      return "a string";
    case JsonType::kInteger:
      return "an integer";
    case JsonType::kNumber:
      return "a number";
    case JsonType::kBoolean:
      return "a boolean";
    case JsonType::kObject:
      return "an object";
    case JsonType::kArray:
      return "an array";
    case JsonType::kAny:
      return "any value";
  }
  return "any value";
}

std::string FieldPath(std::string_view parent, std::string_view name) {
  if (parent.empty()) return std::string(name);
  return fmt::format("{}.{}", parent, name);
}

Result<nlohmann::json> ParseJsonBody(std::string_view body) {
  if (body.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "the request body is empty; a JSON object is needed");
  }
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("the request body is not valid JSON (at byte {}): {}", e.byte, e.what()));
  }
}

Result<void> CheckObject(const nlohmann::json& value, std::string_view path,
                         std::initializer_list<FieldRule> rules) {
  const std::string where = path.empty() ? std::string("the request body") : std::string(path);
  if (!value.is_object()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: expected an object, got {}", where, Describe(value)));
  }
  for (const auto& [key, member] : value.items()) {
    const FieldRule* rule = nullptr;
    for (const FieldRule& candidate : rules) {
      if (candidate.name == key) rule = &candidate;
    }
    if (rule == nullptr) {
      std::string known;
      for (const FieldRule& candidate : rules) {
        if (!known.empty()) known += ", ";
        known += candidate.name;
      }
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}: unknown field (known fields: {})", FieldPath(path, key), known));
    }
    if (member.is_null() && !rule->required) continue;
    if (!HasType(member, rule->type)) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}: expected {}, got {}", FieldPath(path, key),
                              JsonTypeName(rule->type), Describe(member)));
    }
  }
  for (const FieldRule& rule : rules) {
    if (!rule.required) continue;
    auto it = value.find(rule.name);
    if (it == value.end() || it->is_null()) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}: required field is missing ({})", FieldPath(path, rule.name),
                              JsonTypeName(rule.type)));
    }
  }
  return {};
}

}  // namespace fabu::coordinator
