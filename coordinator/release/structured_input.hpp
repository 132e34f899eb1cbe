// Reading plan documents written by people: JSON or YAML in, one strict JSON
// model out.
//
// `ParseDocument` turns JSON (nlohmann/json) or YAML (yaml-cpp) text into a
// nlohmann::json value, so every later check is written once, against JSON.
// YAML scalars are typed as YAML 1.2's core schema says: quoted scalars are
// strings; plain ones are null (`~`, `null`, empty), booleans (`true`,
// `false`), integers, floats, else strings. YAML aliases are expanded, within
// a bound on the number of nodes (kTooLarge past it).
//
// `ObjectReader` reads the members of one object strictly: a member of the
// wrong type, or a member the caller does not know, is a kInvalidArgument
// error naming the field path ("plan.rollback_plan: must be a string",
// "golive: unknown field \"foo\""). A member that is null counts as absent.
//
// Pure and thread-safe; parser exceptions are caught here and become Errors.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::coordinator::release {

enum class DocumentFormat {
  kAuto,  // JSON when the first non-blank character is '{' or '[', else YAML
  kJson,
  kYaml,
};

// Parses a document; errors name the line and column where the parser gives them.
Result<nlohmann::json> ParseDocument(std::string_view text,
                                     DocumentFormat format = DocumentFormat::kAuto);

// The canonical text of a JSON value: compact, keys sorted, UTF-8 kept;
// invalid UTF-8 (possible only in values built by code) becomes U+FFFD
// instead of throwing.
std::string CanonicalJsonText(const nlohmann::json& value);

// "a.b" from path "a" and key "b"; "b" from an empty path.
std::string JoinPath(std::string_view path, std::string_view key);
// "a[3]".
std::string IndexPath(std::string_view path, std::size_t index);

// The JSON type name a person understands: "a string", "a number", ...
std::string_view JsonTypeName(const nlohmann::json& value);

class ObjectReader {
 public:
  // Fails when `value` is not an object ("plan: must be an object, got a string").
  static Result<ObjectReader> Open(const nlohmann::json& value, std::string path);

  const std::string& path() const { return path_; }
  std::string PathOf(std::string_view key) const { return JoinPath(path_, key); }

  // The member, or nullptr when absent or null.
  const nlohmann::json* Find(std::string_view key) const;

  Result<std::optional<std::string>> String(std::string_view key) const;
  Result<std::optional<bool>> Bool(std::string_view key) const;
  // A list of strings; each element must be a non-empty string.
  Result<std::optional<std::vector<std::string>>> StringList(std::string_view key) const;

  // Fails naming the first member not in `known`.
  Result<void> CheckKnown(std::initializer_list<std::string_view> known) const;

 private:
  ObjectReader(const nlohmann::json& object, std::string path)
      : object_(&object), path_(std::move(path)) {}

  const nlohmann::json* object_;
  std::string path_;
};

// "<path>: <message>" as a kInvalidArgument error; just the message when path is empty.
std::unexpected<Error> FieldError(std::string_view path, std::string_view message);

}  // namespace fabu::coordinator::release
