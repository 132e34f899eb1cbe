#include "coordinator/release/structured_input.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <set>

namespace fabu::coordinator::release {
namespace {

using nlohmann::json;

// Aliases can make a small YAML text expand into a huge tree; plans are small.
constexpr std::size_t kMaxYamlNodes = 100'000;

Result<json> ParseJson(std::string_view text) {
  // A stack of the keys seen in each open object, to refuse duplicates, which
  // nlohmann/json would otherwise resolve silently (last one wins).
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  try {
    json value = json::parse(text.begin(), text.end(), callback);
    if (!duplicate.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("field \"{}\" appears twice in one object", duplicate));
    }
    return value;
  } catch (const json::exception& e) {
    return std::unexpected(ErrorFromException(e, ErrorCode::kInvalidArgument, "malformed JSON"));
  }
}

bool IsPlainNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

json PlainScalar(const std::string& s) {
  if (IsPlainNull(s)) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  const char* digits = (s.front() == '+' || s.front() == '-') ? begin + 1 : begin;
  if (digits != end &&
      s.find_first_not_of("0123456789", static_cast<std::size_t>(digits - begin)) ==
          std::string::npos) {
    std::int64_t value = 0;
    const char* from = s.front() == '+' ? begin + 1 : begin;
    auto [ptr, ec] = std::from_chars(from, end, value);
    if (ec == std::errc() && ptr == end) return value;
  }
  if (s.find_first_not_of("0123456789+-.eE") == std::string::npos &&
      s.find_first_of("0123456789") != std::string::npos) {
    double value = 0;
    const char* from = s.front() == '+' ? begin + 1 : begin;
    auto [ptr, ec] = std::from_chars(from, end, value);
    if (ec == std::errc() && ptr == end) return value;
  }
  return s;
}

Result<json> YamlToJson(const YAML::Node& node, std::size_t& budget) {
  if (budget == 0) {
    return Fail(ErrorCode::kTooLarge,
                fmt::format("YAML document expands to more than {} nodes", kMaxYamlNodes));
  }
  --budget;
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      // "!" marks a quoted (non-plain) scalar: always a string.
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return json(node.Scalar());
      return PlainScalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      json array = json::array();
      for (const auto& item : node) {
        auto converted = YamlToJson(item, budget);
        if (!converted) return converted;
        array.push_back(std::move(*converted));
      }
      return array;
    }
    case YAML::NodeType::Map: {
      json object = json::object();
      for (const auto& entry : node) {
        if (!entry.first.IsScalar()) {
          return Fail(ErrorCode::kInvalidArgument,
                      fmt::format("malformed YAML at line {}: a key must be a plain name",
                                  entry.first.Mark().line + 1));
        }
        const std::string key = entry.first.Scalar();
        if (object.contains(key)) {
          return Fail(ErrorCode::kInvalidArgument,
                      fmt::format("field \"{}\" appears twice in one object (YAML line {})", key,
                                  entry.first.Mark().line + 1));
        }
        auto converted = YamlToJson(entry.second, budget);
        if (!converted) return converted;
        object[key] = std::move(*converted);
      }
      return object;
    }
  }
  return Fail(ErrorCode::kInternal, "unknown YAML node type");
}

Result<json> ParseYaml(std::string_view text) {
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    std::size_t budget = kMaxYamlNodes;
    auto value = YamlToJson(root, budget);
    if (!value) return value;
    // yaml-cpp passes bytes through; refuse what is not UTF-8 here, once.
    (void)value->dump();
    return value;
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("malformed YAML at line {}, column {}: {}", e.mark.line + 1,
                            e.mark.column + 1, e.msg));
  } catch (const json::exception& e) {
    return std::unexpected(ErrorFromException(e, ErrorCode::kInvalidArgument, "malformed YAML"));
  }
}

}  // namespace

Result<json> ParseDocument(std::string_view text, DocumentFormat format) {
  if (format == DocumentFormat::kAuto) {
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    const bool looks_json =
        first != std::string_view::npos && (text[first] == '{' || text[first] == '[');
    format = looks_json ? DocumentFormat::kJson : DocumentFormat::kYaml;
  }
  return format == DocumentFormat::kJson ? ParseJson(text) : ParseYaml(text);
}

std::string CanonicalJsonText(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string JoinPath(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string IndexPath(std::string_view path, std::size_t index) {
  return fmt::format("{}[{}]", path, index);
}

std::string_view JsonTypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

std::unexpected<Error> FieldError(std::string_view path, std::string_view message) {
  if (path.empty()) return Fail(ErrorCode::kInvalidArgument, std::string(message));
  return Fail(ErrorCode::kInvalidArgument, fmt::format("{}: {}", path, message));
}

Result<ObjectReader> ObjectReader::Open(const json& value, std::string path) {
  if (!value.is_object()) {
    return FieldError(path.empty() ? std::string("document") : path,
                      fmt::format("must be an object, got {}", JsonTypeName(value)));
  }
  return ObjectReader(value, std::move(path));
}

const json* ObjectReader::Find(std::string_view key) const {
  auto it = object_->find(key);
  if (it == object_->end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<std::string>> ObjectReader::String(std::string_view key) const {
  const json* value = Find(key);
  if (value == nullptr) return std::optional<std::string>();
  if (!value->is_string()) {
    return FieldError(PathOf(key), fmt::format("must be a string, got {}", JsonTypeName(*value)));
  }
  return std::optional<std::string>(value->get<std::string>());
}

Result<std::optional<bool>> ObjectReader::Bool(std::string_view key) const {
  const json* value = Find(key);
  if (value == nullptr) return std::optional<bool>();
  if (!value->is_boolean()) {
    return FieldError(PathOf(key),
                      fmt::format("must be true or false, got {}", JsonTypeName(*value)));
  }
  return std::optional<bool>(value->get<bool>());
}

Result<std::optional<std::vector<std::string>>> ObjectReader::StringList(
    std::string_view key) const {
  const json* value = Find(key);
  if (value == nullptr) return std::optional<std::vector<std::string>>();
  const std::string path = PathOf(key);
  if (!value->is_array()) {
    return FieldError(path, fmt::format("must be a list of strings, got {}", JsonTypeName(*value)));
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < value->size(); ++i) {
    const json& item = (*value)[i];
    if (!item.is_string()) {
      return FieldError(IndexPath(path, i),
                        fmt::format("must be a string, got {}", JsonTypeName(item)));
    }
    if (item.get_ref<const std::string&>().empty()) {
      return FieldError(IndexPath(path, i), "must not be empty");
    }
    out.push_back(item.get<std::string>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<void> ObjectReader::CheckKnown(std::initializer_list<std::string_view> known) const {
  for (const auto& [key, value] : object_->items()) {
    bool found = false;
    for (std::string_view name : known) found = found || name == key;
    if (!found) {
      std::string names;
      for (std::string_view name : known) names += (names.empty() ? "" : ", ") + std::string(name);
      return FieldError(path_, fmt::format("unknown field \"{}\" (known: {})", key, names));
    }
  }
  return {};
}

}  // namespace fabu::coordinator::release
