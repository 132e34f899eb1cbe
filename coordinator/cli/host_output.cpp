#include "coordinator/cli/host_output.hpp"

#include <fmt/format.h>

#include <iostream>
#include <string>

#include "coordinator/cli/client.hpp"
#include "coordinator/release/record_render.hpp"

namespace fabu::cli {

using nlohmann::json;

void PrintOutputLine(std::string_view output) {
  const std::string excerpt = coordinator::release::OutputExcerpt(output);
  if (!excerpt.empty()) std::cout << fmt::format("    output: {}\n", excerpt);
}

void PrintHostTimeline(const json& t) {
  std::cout << fmt::format("{} on {} ({})\n", t.value("release", ""), t.value("host", ""),
                           t.value("state", ""));
  for (const json& d : t.value("deployments", json::array())) {
    const std::string result = d.value("result", "");
    std::cout << fmt::format(
        "\n{} {} {} {} (attempt {}): {}\n", d.value("deployment", ""), d.value("environment", ""),
        d.value("kind", ""), d.value("version", "").empty() ? "-" : d.value("version", ""),
        d.value("attempt", 0), result.empty() ? "in flight, at " + d.value("step", "") : result);
    if (!d.value("from_version", "").empty()) {
      std::cout << fmt::format("  from {}\n", d.value("from_version", ""));
    }
    for (const json& e : d.value("events", json::array())) {
      std::string step = e.value("step", "");
      if (e.contains("failed_step") && e["failed_step"].is_string()) {
        step += " (at " + e["failed_step"].get<std::string>() + ")";
      }
      const std::string message = e.value("message", "");
      std::cout << fmt::format("  {:>3} {:<21} {}{}\n", e.value("sequence", 0), CellText(e["time"]),
                               message.empty() ? step : fmt::format("{:<28} ", step), message);
      const std::string output = e.value("output", "");
      if (output.empty()) continue;
      // The whole tail the agent kept, indented, so nothing of it is lost.
      std::size_t start = 0;
      while (start < output.size()) {
        std::size_t end = output.find('\n', start);
        if (end == std::string::npos) end = output.size();
        std::cout << "      | " << std::string_view(output).substr(start, end - start) << "\n";
        start = end + 1;
      }
    }
  }
}

}  // namespace fabu::cli
