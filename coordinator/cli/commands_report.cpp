// `fabu report`: the period report with its KPIs (procedure §4.6,
// §6.1.1(3)) as json, csv, md or html, in English or in the procedure's
// Chinese terms.
#include <fmt/format.h>

#include <memory>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"
#include "coordinator/cli/output_file.hpp"

namespace fabu::cli {

void RegisterReportCommands(CLI::App& app, int& exit_code) {
  struct Args {
    ClientOptions client;
    std::string month, from, to, format = "md", out, lang = "en";
  };
  auto args = std::make_shared<Args>();
  auto* report = app.add_subcommand(
      "report",
      "The period report (发布管理报告): KPIs of the releases closed in a month or dates");
  auto* month = report->add_option("--month", args->month, "The month, YYYY-MM");
  auto* from = report->add_option("--from", args->from, "The first day, YYYY-MM-DD");
  auto* to = report->add_option("--to", args->to, "The day after the last, YYYY-MM-DD (excluded)");
  month->excludes(from)->excludes(to);
  from->needs(to);
  to->needs(from);
  report->add_option("--format", args->format, "json, csv, md (default) or html")
      ->check(CLI::IsMember({"json", "csv", "md", "html"}));
  report->add_option("--out", args->out, "Write to this file instead of stdout");
  report->add_option("--lang", args->lang, "Labels: en (default) or zh-CN (the procedure's terms)")
      ->check(CLI::IsMember({"en", "zh-CN"}));
  AddClientOptions(report, args->client);
  report->callback([&exit_code, args] {
    if (args->month.empty() && args->from.empty()) {
      return ReportFailure("report",
                           Error(ErrorCode::kInvalidArgument,
                                 "--month: missing; give --month YYYY-MM or --from DATE --to DATE"),
                           exit_code);
    }
    auto client = ApiClient::Create(args->client);
    if (!client) return ReportFailure("report", client.error(), exit_code);
    std::string path = "/api/v1/reports?";
    path += args->month.empty()
                ? "from=" + client->Escape(args->from) + "&to=" + client->Escape(args->to)
                : "month=" + client->Escape(args->month);
    path += "&format=" + client->Escape(args->format) + "&lang=" + client->Escape(args->lang);
    auto r = client->Get(path);
    if (!r) return ReportFailure("report", r.error(), exit_code);
    const std::string content =
        args->format == "json" ? r->dump(2) + "\n" : r->value("content", "");
    if (auto ok = WriteOutput(content, args->out); !ok) {
      return ReportFailure("report", ok.error(), exit_code);
    }
  });
}

}  // namespace fabu::cli
