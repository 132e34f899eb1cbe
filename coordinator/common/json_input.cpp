#include "coordinator/common/json_input.hpp"

#include <fmt/format.h>

#include <cmath>
#include <vector>

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

Result<void> CheckRange(const nlohmann::json& member, const FieldRule& rule,
                        const std::string& path) {
  if (!member.is_number() || (rule.type != JsonType::kInteger && rule.type != JsonType::kNumber)) {
    return {};
  }
  const auto out_of_range = [&] {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: {} is out of range ({} to {})", path,
                            SafeExcerpt(member.dump(), 40), rule.min, rule.max));
  };
  if (member.is_number_unsigned()) {
    if (member.get<std::uint64_t>() > static_cast<std::uint64_t>(rule.max)) return out_of_range();
    return {};
  }
  if (member.is_number_integer()) {
    const auto value = member.get<std::int64_t>();
    if (value < rule.min || value > rule.max) return out_of_range();
    return {};
  }
  const double value = member.get<double>();
  if (!std::isfinite(value) || value < static_cast<double>(rule.min) ||
      value > static_cast<double>(rule.max)) {
    return out_of_range();
  }
  return {};
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

namespace {

// Length of the valid UTF-8 sequence at `text[i]`, or 0 when it is not one
// (overlong forms, surrogates and code points past U+10FFFF are not).
std::size_t Utf8Length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

// Where the parser stopped, as a field path ("", "ttl", "waves[2].hosts"):
// the body parsed again with a callback that follows keys and indexes. Only
// run on a refusal, so an accepted body is parsed once.
std::string PathAtError(std::string_view body) {
  struct Frame {
    bool array = false;
    std::string key;
    std::size_t index = 0;
  };
  std::vector<Frame> frames;
  const auto advance = [&frames] {
    if (frames.empty()) return;
    if (frames.back().array) {
      ++frames.back().index;
    } else {
      frames.back().key.clear();
    }
  };
  using Event = nlohmann::json::parse_event_t;
  const nlohmann::json::parser_callback_t follow = [&](int, Event event,
                                                       nlohmann::json& parsed) -> bool {
    switch (event) {
      case Event::object_start:
        frames.push_back({false, "", 0});
        break;
      case Event::array_start:
        frames.push_back({true, "", 0});
        break;
      case Event::key:
        if (!frames.empty() && parsed.is_string()) frames.back().key = parsed.get<std::string>();
        break;
      case Event::object_end:
      case Event::array_end:
        if (!frames.empty()) frames.pop_back();
        advance();
        break;
      case Event::value:
        advance();
        break;
    }
    return true;
  };
  try {
    const nlohmann::json ignored = nlohmann::json::parse(body, follow);
  } catch (const nlohmann::json::exception&) {
  }
  std::string path;
  for (const Frame& frame : frames) {
    if (frame.array) {
      path += fmt::format("[{}]", frame.index);
    } else if (!frame.key.empty()) {
      if (!path.empty()) path += '.';
      path += SafeExcerpt(frame.key, 64);
    } else {
      break;  // between members: the path of the object is where it stopped
    }
  }
  return path;
}

// nlohmann's reason without its "last read: '...'" part, which quotes the
// caller's bytes (possibly megabytes of them, possibly not UTF-8).
std::string ParseReason(const nlohmann::json::exception& e) {
  std::string_view what = e.what();
  if (auto quote = what.find("; last read"); quote != std::string_view::npos) {
    what = what.substr(0, quote);
  }
  if (auto colon = what.find(": "); colon != std::string_view::npos) what = what.substr(colon + 2);
  return SafeExcerpt(what, 160);
}

}  // namespace

std::string SafeExcerpt(std::string_view text, std::size_t max_bytes) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size() && i < max_bytes) {
    const std::size_t length = Utf8Length(text, i);
    if (length == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    if (i + length > max_bytes) break;
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (length == 1 && (c < 0x20 || c == 0x7F)) {
      out += '?';
    } else {
      out.append(text.substr(i, length));
    }
    i += length;
  }
  if (i < text.size()) out += fmt::format("... ({} bytes)", text.size());
  return out;
}

std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<nlohmann::json> ParseJsonBody(std::string_view body) {
  if (body.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "the request body is empty; a JSON object is needed");
  }
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    const std::string path = PathAtError(body);
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("the request body is not valid JSON (at byte {}{}): {}", e.byte,
                            path.empty() ? "" : ", in " + path, ParseReason(e)));
  } catch (const nlohmann::json::out_of_range&) {
    // nlohmann's only out_of_range while parsing: a number past a double's range.
    const std::string path = PathAtError(body);
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: the number is out of range (a JSON number here must fit a "
                            "64-bit float, and most fields ask for much less)",
                            path.empty() ? "the request body" : path));
  } catch (const nlohmann::json::exception& e) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("the request body is not valid JSON: {}", ParseReason(e)));
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
    if (auto ok = CheckRange(member, *rule, FieldPath(path, key)); !ok) return ok;
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
