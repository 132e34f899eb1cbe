// What the files of coordinator/hosts/ share (hosts.cpp, enroll_tokens.cpp):
// how labels are stored (a JSON object) and how a token is named.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "coordinator/hosts/hosts.hpp"

namespace fabu::coordinator::detail {

// What the audit trail names a token by: never the token, a prefix of its hash.
inline std::string TokenTag(const std::string& token_hash) { return token_hash.substr(0, 12); }

inline nlohmann::json LabelsJson(const Labels& labels) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : labels) out[key] = value;
  return out;
}

inline Labels LabelsFrom(const std::string& text) {
  Labels labels;
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (!parsed.is_object()) return labels;
  for (const auto& [key, value] : parsed.items()) {
    if (value.is_string()) labels[key] = value.get<std::string>();
  }
  return labels;
}

}  // namespace fabu::coordinator::detail
