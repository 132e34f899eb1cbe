// Fills the placeholders of the text `fabu release template` prints
// (coordinator/release/plan_template.hpp): each `<...>` sits in a quoted
// scalar on the line of its field, so the field's key says what to put there,
// whatever the language of the placeholder. Header-only: the release unit
// tests and the coordinator's integration tests both use it.
#pragma once

#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fabu::testing {

struct FilledTemplate {
  std::string text;
  std::vector<std::string> unknown_keys;  // lines with a placeholder whose key had no value
  int filled = 0;                         // placeholders replaced
};

// Replaces the `<...>` on each line by values[key] (key: the text before the
// line's first ':', without indentation). A key missing from `values` is
// listed in unknown_keys and its placeholder left as it was.
inline FilledTemplate FillTemplatePlaceholders(const std::string& text,
                                               const std::map<std::string, std::string>& values) {
  FilledTemplate result;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(' ');
    const bool comment = first != std::string::npos && line[first] == '#';
    const auto open = line.find("\"<");
    const auto colon = line.find(':');
    if (!comment && open != std::string::npos && colon != std::string::npos && colon < open) {
      const std::string key = line.substr(first, colon - first);
      const auto close = line.find(">\"", open);
      const auto value = values.find(key);
      if (value == values.end() || close == std::string::npos) {
        result.unknown_keys.push_back(key);
      } else {
        line.replace(open + 1, close - open, value->second);
        ++result.filled;
      }
    }
    result.text += line + "\n";
  }
  return result;
}

// Values for every field of the template that has a placeholder; a plan
// filled with them is submittable once `package` is a real package id of
// c3m-video V1.3.0.12 and wang.approver exists.
inline std::map<std::string, std::string> TemplateValues(const std::string& package) {
  return {
      {"title", "Video gateway 1.3: HLS low-latency mode"},
      {"product", "c3m-video"},
      {"version", "V1.3.0.12"},
      {"change_refs", "CHG-2026-0113"},
      {"purpose", "Low-latency HLS."},
      {"scope", "All c3m-video servers."},
      {"participants", "Video platform team."},
      {"communication", "Notice to support the day before."},
      {"work_plan", "Tested on the test hosts."},
      {"follow_up", "Watch the latency dashboard."},
      {"rollback_plan", "Automatic rollback."},
      {"known_issues", "Old players fall back."},
      {"baseline", "Debian 12."},
      {"packages", package},
      {"selector", "app=c3m-video"},
      {"reviewers", "wang.approver"},
      {"start", "2036-12-01T01:00:00+08:00"},
      {"end", "2036-12-01T05:00:00+08:00"},
  };
}

}  // namespace fabu::testing
