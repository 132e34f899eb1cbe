// `fabu release ...`: release plans through the procedure (procedure §6.2.1-§6.2.5).
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "coordinator/cli/client.hpp"
#include "coordinator/cli/commands.hpp"
#include "coordinator/cli/host_output.hpp"
#include "coordinator/cli/output_file.hpp"
#include "coordinator/cli/release_view.hpp"
#include "coordinator/release/plan_template.hpp"
#include "coordinator/release/structured_input.hpp"

namespace fabu::cli {
namespace {

using nlohmann::json;

Result<std::string> ReadTextFile(const std::string& path, std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(ErrorCode::kNotFound, fmt::format("{} {}: cannot open", flag, path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A plan or go-live file: JSON or YAML, sent as JSON.
Result<json> ReadDocument(const std::string& path) {
  auto text = ReadTextFile(path, "--file");
  if (!text) return std::unexpected(text.error());
  auto doc = coordinator::release::ParseDocument(*text);
  if (!doc) return std::unexpected(doc.error().WithContext("--file " + path));
  return doc;
}

// Shared shape of the verbs that post to /api/v1/releases/R/<verb>.
struct VerbArgs {
  ClientOptions client;
  std::string id;
  std::string comment;
  bool json = false;
};

void Reply(const json& release, bool as_json) {
  if (as_json) {
    std::cout << release.dump(2) << "\n";
  } else {
    std::cout << fmt::format("{} is {}\n", release.value("id", ""), release.value("state", ""));
  }
}

}  // namespace

void RegisterReleaseCommands(CLI::App& app, int& exit_code) {
  auto* release = app.add_subcommand("release", "Release plans through review, test and schedule");
  release->require_subcommand(1);

  // create
  struct FileArgs {
    ClientOptions client;
    std::string id;
    std::string file;
  };
  auto create_args = std::make_shared<FileArgs>();
  auto* create =
      release->add_subcommand("create", "Create a draft release from a plan; prints its id");
  create->add_option("--file", create_args->file, "PLAN.json or PLAN.yaml")->required();
  AddClientOptions(create, create_args->client);
  create->callback([&exit_code, create_args] {
    auto doc = ReadDocument(create_args->file);
    if (!doc) return ReportFailure("release create", doc.error(), exit_code);
    auto client = ApiClient::Create(create_args->client);
    if (!client) return ReportFailure("release create", client.error(), exit_code);
    auto created = client->Post("/api/v1/releases", *doc);
    if (!created) return ReportFailure("release create", created.error(), exit_code);
    std::cout << created->value("id", "") << "\n";
  });

  // template: offline, asks no coordinator (docs/plan.md).
  struct TemplateArgs {
    std::string lang = "en";
    bool emergency = false;
  };
  auto template_args = std::make_shared<TemplateArgs>();
  auto* plan_template = release->add_subcommand(
      "template",
      "Print a complete release plan (发布方案) in YAML, a comment on every field; offline");
  plan_template
      ->add_option("--lang", template_args->lang,
                   "Language of the comments and placeholders: en (default) or zh-CN")
      ->check(CLI::IsMember({"en", "zh-CN"}));
  plan_template->add_flag("--emergency", template_args->emergency,
                          "The emergency release's plan (category emergency)");
  plan_template->callback([&exit_code, template_args] {
    auto lang = coordinator::release::ParseLang(template_args->lang);
    if (!lang) return ReportFailure("release template", lang.error(), exit_code);
    std::cout << coordinator::release::PlanTemplate(
        *lang, template_args->emergency ? coordinator::release::PlanTemplateVariant::kEmergency
                                        : coordinator::release::PlanTemplateVariant::kNormal);
  });

  // update
  auto update_args = std::make_shared<FileArgs>();
  auto* update = release->add_subcommand(
      "update", "Replace a release's plan (a reviewed release returns to draft)");
  update->add_option("R", update_args->id, "Release id")->required();
  update->add_option("--file", update_args->file, "PLAN.json or PLAN.yaml")->required();
  AddClientOptions(update, update_args->client);
  update->callback([&exit_code, update_args] {
    auto doc = ReadDocument(update_args->file);
    if (!doc) return ReportFailure("release update", doc.error(), exit_code);
    auto client = ApiClient::Create(update_args->client);
    if (!client) return ReportFailure("release update", client.error(), exit_code);
    auto updated =
        client->Post("/api/v1/releases/" + client->Escape(update_args->id) + "/plan", *doc);
    if (!updated) return ReportFailure("release update", updated.error(), exit_code);
    Reply(*updated, false);
  });

  // show
  auto show_args = std::make_shared<VerbArgs>();
  auto* show = release->add_subcommand(
      "show",
      "Show a release: its plan's nine parts, review, test, go-live plan, rollout, history");
  show->add_option("R", show_args->id, "Release id")->required();
  show->add_flag("--json", show_args->json, "Print JSON");
  AddClientOptions(show, show_args->client);
  show->callback([&exit_code, show_args] {
    auto client = ApiClient::Create(show_args->client);
    if (!client) return ReportFailure("release show", client.error(), exit_code);
    const std::string base = "/api/v1/releases/" + client->Escape(show_args->id);
    auto r = client->Get(base);
    if (!r) return ReportFailure("release show", r.error(), exit_code);
    if (show_args->json) {
      std::cout << r->dump(2) << "\n";
      return;
    }
    auto hosts = client->Get(base + "/hosts");
    if (!hosts) return ReportFailure("release show", hosts.error(), exit_code);
    std::cout << ReleaseText(*r, (*hosts)["hosts"]);
  });

  // list
  struct ListArgs {
    ClientOptions client;
    std::string state, change, product;
    bool json = false;
  };
  auto list_args = std::make_shared<ListArgs>();
  auto* list = release->add_subcommand("list", "List releases");
  list->add_option("--state", list_args->state, "Only releases in this state");
  list->add_option("--change", list_args->change, "Only releases carrying this change request");
  list->add_option("--product", list_args->product, "Only releases of this product");
  list->add_flag("--json", list_args->json, "Print JSON");
  AddClientOptions(list, list_args->client);
  list->callback([&exit_code, list_args] {
    auto client = ApiClient::Create(list_args->client);
    if (!client) return ReportFailure("release list", client.error(), exit_code);
    std::string query;
    auto add = [&](const char* name, const std::string& value) {
      if (value.empty()) return;
      query += (query.empty() ? "?" : "&") + std::string(name) + "=" + client->Escape(value);
    };
    add("state", list_args->state);
    add("change", list_args->change);
    add("product", list_args->product);
    auto r = client->Get("/api/v1/releases" + query);
    if (!r) return ReportFailure("release list", r.error(), exit_code);
    const json& items = (*r)["releases"];
    if (list_args->json) {
      std::cout << items.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{:<8} {:<12} {:<16} {:<12} {:<10} {:<16} {}\n", "ID", "STATE",
                             "PRODUCT", "VERSION", "CATEGORY", "OWNER", "TITLE");
    for (const auto& s : items) {
      std::cout << fmt::format("{:<8} {:<12} {:<16} {:<12} {:<10} {:<16} {}\n", s.value("id", ""),
                               s.value("state", ""), s.value("product", ""), s.value("version", ""),
                               s.value("category", ""), s.value("owner", ""), s.value("title", ""));
    }
  });

  // Verbs with an optional comment: submit, approve, approve-golive, reject, cancel.
  struct Verb {
    const char* name;
    const char* help;
    const char* comment_flag;  // nullptr: no comment
    bool comment_required;
  };
  static constexpr Verb kVerbs[] = {
      {"submit", "Submit a draft for review (all nine plan sections needed)", nullptr, false},
      {"approve", "Approve as a listed reviewer (approver; never the owner)", "--comment", false},
      {"reject", "Reject back to draft, saying why (approver)", "--comment", true},
      {"approve-golive", "Approve a go-live plan set after approval (approver)", "--comment",
       false},
      {"cancel", "Cancel a release before deployment, saying why", "--reason", true},
  };
  for (const Verb& verb : kVerbs) {
    auto args = std::make_shared<VerbArgs>();
    auto* cmd = release->add_subcommand(verb.name, verb.help);
    cmd->add_option("R", args->id, "Release id")->required();
    if (verb.comment_flag != nullptr) {
      auto* opt = cmd->add_option(verb.comment_flag, args->comment, "Recorded with the decision");
      if (verb.comment_required) opt->required();
    }
    cmd->add_flag("--json", args->json, "Print the release as JSON");
    AddClientOptions(cmd, args->client);
    const std::string name = verb.name;
    const bool is_reason =
        verb.comment_flag != nullptr && std::string(verb.comment_flag) == "--reason";
    cmd->callback([&exit_code, args, name, is_reason] {
      const std::string command = "release " + name;
      auto client = ApiClient::Create(args->client);
      if (!client) return ReportFailure(command, client.error(), exit_code);
      json body = json::object();
      if (!args->comment.empty()) body[is_reason ? "reason" : "comment"] = args->comment;
      auto r = client->Post("/api/v1/releases/" + client->Escape(args->id) + "/" + name, body);
      if (!r) return ReportFailure(command, r.error(), exit_code);
      Reply(*r, args->json);
    });
  }

  // test-report
  struct TestArgs {
    ClientOptions client;
    std::string id, result, file;
    bool json = false;
  };
  auto test_args = std::make_shared<TestArgs>();
  auto* test = release->add_subcommand("test-report", "File the test report (tester)");
  test->add_option("R", test_args->id, "Release id")->required();
  test->add_option("--result", test_args->result, "passed or failed")->required();
  test->add_option("--file", test_args->file, "The report, e.g. REPORT.md")->required();
  test->add_flag("--json", test_args->json, "Print the release as JSON");
  AddClientOptions(test, test_args->client);
  test->callback([&exit_code, test_args] {
    auto text = ReadTextFile(test_args->file, "--file");
    if (!text) return ReportFailure("release test-report", text.error(), exit_code);
    auto client = ApiClient::Create(test_args->client);
    if (!client) return ReportFailure("release test-report", client.error(), exit_code);
    auto r = client->Post("/api/v1/releases/" + client->Escape(test_args->id) + "/test-report",
                          {{"result", test_args->result}, {"report", *text}});
    if (!r) return ReportFailure("release test-report", r.error(), exit_code);
    Reply(*r, test_args->json);
  });

  // accept
  struct AcceptArgs {
    ClientOptions client;
    std::string id, reason, comment;
    bool waive_test = false;
    bool json = false;
  };
  auto accept_args = std::make_shared<AcceptArgs>();
  auto* accept = release->add_subcommand(
      "accept", "Accept a tested release (approver); emergency only: --waive-test --reason");
  accept->add_option("R", accept_args->id, "Release id")->required();
  accept->add_flag("--waive-test", accept_args->waive_test,
                   "Accept without a passed test report (category emergency; flagged forever)");
  accept->add_option("--reason", accept_args->reason, "Why the test is waived");
  accept->add_option("--comment", accept_args->comment, "Recorded with the acceptance");
  accept->add_flag("--json", accept_args->json, "Print the release as JSON");
  AddClientOptions(accept, accept_args->client);
  accept->callback([&exit_code, accept_args] {
    auto client = ApiClient::Create(accept_args->client);
    if (!client) return ReportFailure("release accept", client.error(), exit_code);
    json body = {{"waive_test", accept_args->waive_test}};
    if (!accept_args->reason.empty()) body["reason"] = accept_args->reason;
    if (!accept_args->comment.empty()) body["comment"] = accept_args->comment;
    auto r = client->Post("/api/v1/releases/" + client->Escape(accept_args->id) + "/accept", body);
    if (!r) return ReportFailure("release accept", r.error(), exit_code);
    Reply(*r, accept_args->json);
  });

  // schedule
  auto schedule_args = std::make_shared<FileArgs>();
  auto* schedule = release->add_subcommand(
      "schedule", "Schedule an accepted release; --file sets a new go-live plan first");
  schedule->add_option("R", schedule_args->id, "Release id")->required();
  schedule->add_option("--file", schedule_args->file, "GOLIVE.json or GOLIVE.yaml");
  AddClientOptions(schedule, schedule_args->client);
  schedule->callback([&exit_code, schedule_args] {
    auto client = ApiClient::Create(schedule_args->client);
    if (!client) return ReportFailure("release schedule", client.error(), exit_code);
    const std::string base = "/api/v1/releases/" + client->Escape(schedule_args->id);
    if (!schedule_args->file.empty()) {
      auto doc = ReadDocument(schedule_args->file);
      if (!doc) return ReportFailure("release schedule", doc.error(), exit_code);
      auto set = client->Post(base + "/golive", *doc);
      if (!set) return ReportFailure("release schedule", set.error(), exit_code);
      if (!set->value("golive_approved", false)) {
        std::cerr << fmt::format(
            "fabu release schedule: the go-live plan of {} was saved; it changed after "
            "approval, so an approver must run `fabu release approve-golive {}` before it can "
            "be scheduled (§6.2.5)\n",
            schedule_args->id, schedule_args->id);
        exit_code = 1;
        return;
      }
    }
    auto r = client->Post(base + "/schedule", json::object());
    if (!r) return ReportFailure("release schedule", r.error(), exit_code);
    Reply(*r, false);
  });

  // test, start: deploy to the targets labelled env=test / env=production.
  struct DeployVerb {
    const char* name;
    const char* help;
  };
  static constexpr DeployVerb kDeployVerbs[] = {
      {"test", "Deploy an approved release to its targets labelled env=test"},
      {"start",
       "Start the production rollout of a scheduled release: its targets labelled "
       "env=production (release_manager or admin)"},
  };
  for (const DeployVerb& verb : kDeployVerbs) {
    auto args = std::make_shared<VerbArgs>();
    auto* cmd = release->add_subcommand(verb.name, verb.help);
    cmd->add_option("R", args->id, "Release id")->required();
    cmd->add_flag("--json", args->json, "Print the release and its new deployments as JSON");
    AddClientOptions(cmd, args->client);
    const std::string name = verb.name;
    cmd->callback([&exit_code, args, name] {
      const std::string command = "release " + name;
      auto client = ApiClient::Create(args->client);
      if (!client) return ReportFailure(command, client.error(), exit_code);
      auto r =
          client->Post("/api/v1/releases/" + client->Escape(args->id) + "/" + name, json::object());
      if (!r) return ReportFailure(command, r.error(), exit_code);
      if (args->json) {
        std::cout << r->dump(2) << "\n";
        return;
      }
      const json& deployments = (*r)["deployments"];
      std::cout << fmt::format("{} is {}; {} host(s) assigned\n", args->id,
                               (*r)["release"].value("state", ""), deployments.size());
      for (const auto& d : deployments) {
        std::cout << fmt::format("  {:<24} {}\n", d.value("host", ""), d.value("deployment", ""));
      }
    });
  }

  // hosts
  auto hosts_args = std::make_shared<VerbArgs>();
  auto* hosts = release->add_subcommand(
      "hosts", "Each host's deployment: step, message, times, a failing hook's output");
  hosts->add_option("R", hosts_args->id, "Release id")->required();
  hosts->add_flag("--json", hosts_args->json, "Print JSON");
  AddClientOptions(hosts, hosts_args->client);
  hosts->callback([&exit_code, hosts_args] {
    auto client = ApiClient::Create(hosts_args->client);
    if (!client) return ReportFailure("release hosts", client.error(), exit_code);
    auto r = client->Get("/api/v1/releases/" + client->Escape(hosts_args->id) + "/hosts");
    if (!r) return ReportFailure("release hosts", r.error(), exit_code);
    if (hosts_args->json) {
      std::cout << r->dump(2) << "\n";
      return;
    }
    auto time = [](const json& t) {
      return t.is_string() ? t.get<std::string>() : std::string("-");
    };
    std::cout << fmt::format("{} is {}\n", r->value("release", ""), r->value("state", ""));
    std::cout << fmt::format("{:<24} {:<11} {:<16} {:<16} {:<21} {:<21} {}\n", "HOST", "ENV",
                             "STEP", "RESULT", "STARTED", "FINISHED", "MESSAGE");
    for (const auto& d : (*r)["hosts"]) {
      std::cout << fmt::format("{:<24} {:<11} {:<16} {:<16} {:<21} {:<21} {}\n",
                               d.value("host", ""), d.value("environment", ""), d.value("step", ""),
                               d.value("result", "").empty() ? "-" : d.value("result", ""),
                               time(d["started"]), time(d["finished"]), d.value("message", ""));
      PrintOutputLine(d.value("output", ""));
    }
  });

  // host
  struct HostArgs {
    ClientOptions client;
    std::string id, host;
    bool json = false;
  };
  auto host_args = std::make_shared<HostArgs>();
  auto* host_cmd = release->add_subcommand(
      "host", "One host's timeline in a release: every step it reported, with hook output");
  host_cmd->add_option("R", host_args->id, "Release id")->required();
  host_cmd->add_option("HOST", host_args->host, "Host name")->required();
  host_cmd->add_flag("--json", host_args->json, "Print JSON");
  AddClientOptions(host_cmd, host_args->client);
  host_cmd->callback([&exit_code, host_args] {
    auto client = ApiClient::Create(host_args->client);
    if (!client) return ReportFailure("release host", client.error(), exit_code);
    auto r = client->Get("/api/v1/releases/" + client->Escape(host_args->id) + "/hosts/" +
                         client->Escape(host_args->host));
    if (!r) return ReportFailure("release host", r.error(), exit_code);
    if (host_args->json) {
      std::cout << r->dump(2) << "\n";
      return;
    }
    PrintHostTimeline(*r);
  });

  // export
  struct ExportArgs {
    ClientOptions client;
    std::string id, doc = "plan", format, out, lang = "en";
  };
  auto export_args = std::make_shared<ExportArgs>();
  auto* exp = release->add_subcommand(
      "export",
      "Render a release record (plan: 发布方案; test-report: 发布测试报告; release-report: "
      "发布报告; upgrade-records: 升级记录表)");
  exp->add_option("R", export_args->id, "Release id")->required();
  exp->add_option("--doc", export_args->doc,
                  "Which record: plan (default), test-report, release-report or upgrade-records")
      ->check(CLI::IsMember({"plan", "test-report", "release-report", "upgrade-records"}));
  exp->add_option("--format", export_args->format,
                  "md (default), html or json; upgrade-records: csv (default), md, html or json");
  exp->add_option("--lang", export_args->lang,
                  "Language of the record's labels and terms (states, categories, close "
                  "codes, results): en (default) or zh-CN, the procedure's")
      ->check(CLI::IsMember({"en", "zh-CN"}));
  exp->add_option("--out", export_args->out, "Write to this file instead of stdout");
  AddClientOptions(exp, export_args->client);
  exp->callback([&exit_code, export_args] {
    auto client = ApiClient::Create(export_args->client);
    if (!client) return ReportFailure("release export", client.error(), exit_code);
    std::string format = export_args->format;
    if (format.empty()) format = export_args->doc == "upgrade-records" ? "csv" : "md";
    auto r = client->Get("/api/v1/releases/" + client->Escape(export_args->id) + "/export?doc=" +
                         client->Escape(export_args->doc) + "&format=" + client->Escape(format) +
                         "&lang=" + client->Escape(export_args->lang));
    if (!r) return ReportFailure("release export", r.error(), exit_code);
    if (auto ok = WriteOutput(r->value("content", ""), export_args->out); !ok) {
      return ReportFailure("release export", ok.error(), exit_code);
    }
  });
}

}  // namespace fabu::cli
