// The CMDB end to end: real agents upgrade, the real
// coordinator records each host's upgrade and delivers it to a webhook
// receiver and to an iTop stand-in on 127.0.0.1 — a receiver that is down
// (503), a coordinator restarted while deliveries are pending, then the
// receiver up: each idempotency key delivered once, every HMAC valid.
//
// There is no iTop here: ItopStandIn answers like iTop's REST/JSON API
// (rest.php, json_data with core/get, core/create, core/update, code 0) and
// keeps its objects in memory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>

#include "coordinator/cmdb/connectors.hpp"
#include "tests/e2e/fleet.hpp"
#include "tests/support/http_receiver.hpp"

namespace fabu::e2e {
namespace {

using fabu::testing::HttpReceiver;
using fabu::testing::ReceivedRequest;

// Decodes an application/x-www-form-urlencoded body (test side only).
std::map<std::string, std::string> FormFields(const std::string& body) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t end = body.find('&', start);
    if (end == std::string::npos) end = body.size();
    const std::string pair = body.substr(start, end - start);
    const std::size_t eq = pair.find('=');
    auto decode = [](const std::string& text) {
      std::string decoded;
      for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
          decoded += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else {
          decoded += text[i] == '+' ? ' ' : text[i];
        }
      }
      return decoded;
    };
    if (eq != std::string::npos) out[decode(pair.substr(0, eq))] = decode(pair.substr(eq + 1));
    start = end + 1;
  }
  return out;
}

// iTop's REST API as far as the connector uses it; objects in memory.
class ItopStandIn {
 public:
  std::pair<int, std::string> Answer(const ReceivedRequest& request) {
    std::lock_guard lock(mutex_);
    auto form = FormFields(request.body);
    if (form["auth_user"] != "fabu-rest" || form["auth_pwd"] != "pw") {
      return {200, json{{"code", 1}, {"message", "Error: Invalid login"}}.dump()};
    }
    json call = json::parse(form["json_data"], nullptr, false);
    if (!call.is_object()) return {200, json{{"code", 4}, {"message", "missing json"}}.dump()};
    const std::string op = call.value("operation", ""), cls = call.value("class", "");
    calls.push_back(op + " " + cls);
    if (op == "core/get") {
      json objects = json::object();
      for (const auto& [key, fields] : objects_[cls]) {
        bool match = true;
        for (const auto& [name, value] : call["key"].items()) {
          match = match && fields.contains(name) && fields[name] == value;
        }
        if (match) objects[cls + "::" + key] = {{"code", 0}, {"class", cls}, {"key", key}};
      }
      return {200, json{{"code", 0},
                        {"message", "Found: " + std::to_string(objects.size())},
                        {"objects", objects.empty() ? json(nullptr) : objects}}
                       .dump()};
    }
    if (op == "core/create") {
      const std::string key = std::to_string(++next_key_);
      objects_[cls][key] = call["fields"];
      return {
          200,
          json{{"code", 0}, {"objects", {{cls + "::" + key, {{"code", 0}, {"key", key}}}}}}.dump()};
    }
    if (op == "core/update") {
      const std::string key = call["key"].get<std::string>();
      for (const auto& [name, value] : call["fields"].items()) objects_[cls][key][name] = value;
      return {
          200,
          json{{"code", 0}, {"objects", {{cls + "::" + key, {{"code", 0}, {"key", key}}}}}}.dump()};
    }
    return {200, json{{"code", 3}, {"message", "unknown operation " + op}}.dump()};
  }

  // Field `field` of the object of `cls` with `name`.
  std::string Field(const std::string& cls, const std::string& name, const std::string& field,
                    const std::string& server_key = "") {
    std::lock_guard lock(mutex_);
    for (const auto& [key, fields] : objects_[cls]) {
      if (fields.value("name", "") != name) continue;
      if (!server_key.empty() && fields.value("system_id", "") != server_key) continue;
      return fields.contains(field) ? fields[field].dump() : "";
    }
    return "";
  }
  std::string KeyOf(const std::string& cls, const std::string& name) {
    std::lock_guard lock(mutex_);
    for (const auto& [key, fields] : objects_[cls]) {
      if (fields.value("name", "") == name) return key;
    }
    return "";
  }
  std::size_t Count(const std::string& cls) {
    std::lock_guard lock(mutex_);
    return objects_[cls].size();
  }

  std::vector<std::string> calls;

 private:
  std::mutex mutex_;
  std::map<std::string, std::map<std::string, json>> objects_;
  int next_key_ = 0;
};

class CmdbE2eTest : public Fleet {
 protected:
  // Restarts the coordinator with `cmdb` as the config's "cmdb" section.
  void Configure(const json& cmdb) {
    ASSERT_EQ(StopCoordinator(), 0);
    const fs::path config = CoordinatorDir() / "config.json";
    json j = json::parse(fabu::testing::ReadFile(config));
    j["cmdb"] = cmdb;
    // Webhooks go only where config.json allows: here, each receiver.
    j["webhook_allow"] = json::array();
    for (const auto& c : cmdb.value("connectors", json::array())) {
      const std::string url = c.value("url", "");
      const auto host_end = url.find('/', url.find("://") + 3);
      j["webhook_allow"].push_back(url.substr(0, host_end + 1));
    }
    fabu::testing::WriteFile(config, j.dump(2));
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  }

  // As an admin: a viewer is not shown a delivery's error (below).
  json Outbox(const std::string& as = "") {
    auto r = As(as.empty() ? admin_ : as, {"cmdb", "outbox", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false)["messages"];
  }

  bool AllDelivered(std::size_t expected) {
    json messages = Outbox();
    if (messages.size() != expected) return false;
    for (const auto& m : messages) {
      if (m["state"] != "delivered") return false;
    }
    return true;
  }
};

TEST_F(CmdbE2eTest, AWebhookDownThenUpGetsEachKeyOnceSignedAcrossARestart) {
  HttpReceiver receiver;
  receiver.SetStatus(503, "{\"error\": \"maintenance\"}");
  fabu::testing::WriteFile(CoordinatorDir() / "hook.secret", "k3y-for-hmac\n");
  ASSERT_NO_FATAL_FAILURE(Configure({{"connectors",
                                      {{{"name", "ops"},
                                        {"type", "webhook"},
                                        {"url", receiver.url("/cmdb")},
                                        {"secret_file", "hook.secret"}}}},
                                     {"retry", {{"initial_seconds", 1}, {"max_seconds", 2}}}}));
  AddAgents(2);
  const Package v1 = BuildAndUpload(kV1);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));

  // Recorded in the store at once; the receiver refuses, so the outbox keeps trying.
  auto history = As(viewer_, {"cmdb", "history", "--json"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  json records = json::parse(history.out)["records"];
  ASSERT_EQ(records.size(), 2u) << records.dump(2);
  for (const auto& r : records) {
    EXPECT_EQ(r["to_version"], kV1);
    EXPECT_EQ(r["result"], "succeeded");
    EXPECT_EQ(r["operator"], "zhang.rm");
    EXPECT_EQ(r["from_version"], "");  // nothing was installed before
  }
  // The oldest message is retried (with its error); the other waits behind it.
  ASSERT_TRUE(WaitFor([&] {
    json messages = Outbox();  // newest first
    return messages.size() == 2 && messages[1]["state"] == "failing" &&
           messages[1]["attempts"].get<int>() >= 2 &&
           messages[1]["last_error"].get<std::string>().find("HTTP 503") != std::string::npos &&
           messages[0]["state"] == "pending";
  })) << Outbox().dump(2);
  auto table = As(viewer_, {"cmdb", "outbox"});
  EXPECT_NE(table.out.find("failing"), std::string::npos) << table.out;
  // A viewer learns that it failed, not how: whether a port answered is
  // for admins only.
  EXPECT_EQ(table.out.find("HTTP 503"), std::string::npos) << table.out;
  EXPECT_EQ(Outbox(viewer_)[1]["last_error"], "delivery failed (the details are shown to admins)");

  // The coordinator stops with deliveries pending and comes back.
  const int port = Port();  // the agents know this one
  ASSERT_EQ(StopCoordinator(), 0);
  receiver.SetStatus(200);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(port));
  ASSERT_TRUE(WaitFor([&] { return AllDelivered(2); })) << Outbox().dump(2);

  std::map<std::string, int> accepted;
  for (const auto& request : receiver.requests()) {
    EXPECT_EQ(request.headers.at("x-fabu-signature"),
              coordinator::WebhookSignature("k3y-for-hmac", request.body));
    json body = json::parse(request.body);
    EXPECT_EQ(request.headers.at("idempotency-key"), body["idempotency_key"]);
    if (request.status == 200) ++accepted[request.headers.at("idempotency-key")];
  }
  EXPECT_EQ(accepted.size(), 2u);
  for (const auto& [key, count] : accepted) EXPECT_EQ(count, 1) << key;
  EXPECT_EQ(accepted.count(std::string("R-1/web-1/c3m-video/") + kV1 + "/install.succeeded"), 1u);

  // The next release's records know what each host ran before (its inventory).
  ASSERT_TRUE(WaitFor([&] {
    auto host = As(viewer_, {"cmdb", "host", "web-1", "--json"});
    return host.exit_code == 0 &&
           json::parse(host.out)["apps"].dump().find(kV1) != std::string::npos;
  }));
  ASSERT_TRUE(WaitFor([&] {
    auto host = As(viewer_, {"cmdb", "host", "web-2", "--json"});
    return host.exit_code == 0 &&
           json::parse(host.out)["apps"].dump().find(kV1) != std::string::npos;
  }));
  const Package v2 = BuildAndUpload(kV2);
  ASSERT_NO_FATAL_FAILURE(Deploy(v2));
  auto csv = As(viewer_, {"release", "export", "R-2", "--doc", "upgrade-records"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_NE(csv.out.find(std::string("web-1,c3m-video,") + kV1 + "," + kV2), std::string::npos)
      << csv.out;
  EXPECT_NE(csv.out.find(std::string("web-2,c3m-video,") + kV1 + "," + kV2), std::string::npos)
      << csv.out;
  ASSERT_TRUE(WaitFor([&] { return AllDelivered(4); })) << Outbox().dump(2);
  auto records_json =
      As(viewer_, {"release", "export", "R-2", "--doc", "upgrade-records", "--format", "json"});
  ASSERT_EQ(records_json.exit_code, 0) << records_json.err;
  EXPECT_TRUE(json::parse(records_json.out)["cmdb"]["confirmed"].get<bool>()) << records_json.out;
  auto bad =
      As(viewer_, {"release", "export", "R-2", "--doc", "upgrade-records", "--format", "pdf"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("csv, md, html or json"), std::string::npos) << bad.err;
}

// Given a webhook that refuses, closing waits for the CMDB update (seed
// §6.2.8-§6.2.9): refused while deliveries are outstanding, accepted once
// they are delivered or an approver waived them; the baselines before and
// after are in the store, and a closed release is read-only.
TEST_F(CmdbE2eTest, CloseWaitsUntilTheCmdbUpdateIsConfirmedOrWaived) {
  HttpReceiver receiver;
  receiver.SetStatus(503, "{\"error\": \"maintenance\"}");
  ASSERT_NO_FATAL_FAILURE(Configure({{"connectors",
                                      {{{"name", "ops"},
                                        {"type", "webhook"},
                                        {"url", receiver.url("/cmdb")},
                                        {"secret", "s3cret"}}}},
                                     {"retry", {{"initial_seconds", 1}, {"max_seconds", 1}}}}));
  AddAgents(2);
  const Package v1 = BuildAndUpload(kV1);
  ASSERT_NO_FATAL_FAILURE(Deploy(v1));

  auto refused = As(rm_, {"release", "close", "R-1"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("the CMDB update is not confirmed"), std::string::npos) << refused.err;
  EXPECT_EQ(State("R-1"), "deployed");

  receiver.SetStatus(200);
  ASSERT_TRUE(WaitFor([&] { return AllDelivered(2); })) << Outbox().dump(2);
  // A host that joins after the rollout: matching the targets, not in the release.
  AddAgents(1, "env=production,app=c3m-video", true, "late-");
  auto closed = As(rm_, {"release", "close", "R-1", "--notes", "all green"});
  ASSERT_EQ(closed.exit_code, 0) << closed.err;
  EXPECT_NE(closed.out.find("R-1 is closed: success"), std::string::npos) << closed.out;
  const json shown = Show("R-1");
  EXPECT_EQ(shown.value("state", ""), "closed");
  EXPECT_EQ(shown.value("close_code", ""), "success");
  EXPECT_TRUE(shown["closure"].value("finished_in_window", false)) << shown["closure"].dump(2);
  EXPECT_EQ(shown["closure"].value("cmdb", "").rfind("confirmed", 0), 0u)
      << shown["closure"].dump(2);
  // Each step of the history is kept to the millisecond (the report's
  // average review time needs it), in the second its "at" names.
  for (const auto& h : shown["history"]) {
    EXPECT_GT(h.value("at_ms", std::int64_t{0}), 0) << h.dump();
    EXPECT_EQ(h.value("at_ms", std::int64_t{0}) / 1000, h["at"].value("unix", std::int64_t{-1}))
        << h.dump();
  }
  std::map<std::string, std::string> baseline;  // phase/host -> version
  for (const auto& row :
       QueryStore("SELECT phase, host, version FROM cmdb_baselines WHERE release_id = 'R-1'")) {
    baseline[row[0] + "/" + row[1]] = row[2];
  }
  EXPECT_TRUE(baseline.contains("before/web-1"));
  EXPECT_EQ(baseline["before/web-1"], "");
  EXPECT_EQ(baseline["after/web-1"], kV1);
  EXPECT_EQ(baseline["after/web-2"], kV1);
  EXPECT_TRUE(baseline.contains("outside/late-1"));
  EXPECT_FALSE(baseline.contains("after/late-1"));
  // The same baseline from the CLI: nothing before, the new version after.
  auto base = As(viewer_, {"cmdb", "baseline", "R-1"});
  ASSERT_EQ(base.exit_code, 0) << base.err;
  EXPECT_THAT(base.out, ::testing::ContainsRegex("web-1 +c3m-video +- +V1\\.0\\.0\\.1 +changed\n"))
      << base.out;
  EXPECT_THAT(base.out, ::testing::ContainsRegex("after +taken 20")) << base.out;
  EXPECT_THAT(base.out, ::testing::ContainsRegex("not in this release \\(matching the targets at "
                                                 "close; not deployed to\\):\n"
                                                 "late-1 +- +- +- +not in release\n"))
      << base.out;
  // And in the release report (发布报告), in both languages.
  auto report =
      As(viewer_, {"release", "export", "R-1", "--doc", "release-report", "--format", "md"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_NE(report.out.find("## Configuration baseline"), std::string::npos) << report.out;
  EXPECT_NE(report.out.find("| web-1 | c3m-video | — | V1.0.0.1 |"), std::string::npos)
      << report.out;
  EXPECT_NE(report.out.find("Hosts matching the targets at close that were not in this release"),
            std::string::npos)
      << report.out;
  EXPECT_NE(report.out.find("| late-1 | — | — |"), std::string::npos) << report.out;
  auto report_zh = As(viewer_, {"release", "export", "R-1", "--doc", "release-report", "--format",
                                "md", "--lang", "zh-CN"});
  ASSERT_EQ(report_zh.exit_code, 0) << report_zh.err;
  EXPECT_NE(report_zh.out.find("## 配置基线"), std::string::npos) << report_zh.out;
  EXPECT_NE(report_zh.out.find("| 主机 | 应用 | 发布前 | 关闭时 |"), std::string::npos)
      << report_zh.out;
  EXPECT_NE(report_zh.out.find("关闭时符合发布范围但未纳入本次发布的主机"), std::string::npos)
      << report_zh.out;
  // `release show` tells the whole story, not only the state.
  auto shown_text = As(viewer_, {"release", "show", "R-1"});
  ASSERT_EQ(shown_text.exit_code, 0) << shown_text.err;
  for (const char* part :
       {"state     closed (success)",
        "1. Purpose and background (发布的目的和背景)\n     Ship V1.0.0.1.",
        "9. Software and hardware configuration baseline (与软、硬件有关的配置基线)\n     "
        "c3m-video on every host.",
        "Review (round 1)", "wang.approver      approved 20", "li.approver        approved 20",
        "on 1 host: 1 succeeded", "report      passed by chen.tester at 20",
        "accepted    by wang.approver at 20", "waves          100%", "max failures   0",
        "approved       with the plan, in its review", "observe        no",
        "production  2 hosts: 2 succeeded", "closed      by zhang.rm at 20",
        "finished inside the window", "notes       all green", "close           zhang.rm"}) {
    EXPECT_NE(shown_text.out.find(part), std::string::npos) << part << "\n" << shown_text.out;
  }
  // Read-only once closed.
  EXPECT_NE(As(rm_, {"release", "close", "R-1"}).exit_code, 0);
  EXPECT_NE(As(rm_, {"release", "pause", "R-1", "--reason", "late"}).exit_code, 0);

  // The next one: the receiver down again, an approver waives the deliveries.
  receiver.SetStatus(503);
  const Package v2 = BuildAndUpload(kV2);
  ASSERT_NO_FATAL_FAILURE(Deploy(v2));
  EXPECT_NE(As(rm_, {"release", "close", "R-2"}).exit_code, 0);
  EXPECT_NE(As(rm_, {"cmdb", "waive", "R-2", "--reason", "CMDB down"}).exit_code, 0);
  auto waived = As(wang_, {"cmdb", "waive", "R-2", "--reason", "CMDB down for maintenance"});
  ASSERT_EQ(waived.exit_code, 0) << waived.err;
  auto success = As(rm_, {"release", "close", "R-2", "--code", "success"});
  ASSERT_EQ(success.exit_code, 0) << success.err;
  EXPECT_NE(Show("R-2")["closure"].value("cmdb", "").find("waived"), std::string::npos);
  auto base2 = As(viewer_, {"cmdb", "baseline", "R-2"});
  ASSERT_EQ(base2.exit_code, 0) << base2.err;
  EXPECT_THAT(base2.out, ::testing::ContainsRegex(
                             "web-2 +c3m-video +V1\\.0\\.0\\.1 +V1\\.0\\.0\\.2 +changed\n"))
      << base2.out;
}

TEST_F(CmdbE2eTest, TheItopConnectorCreatesTheServerAndUpdatesItsSoftwareInstance) {
  ItopStandIn itop;
  HttpReceiver receiver;
  receiver.SetAnswer([&](const ReceivedRequest& request) { return itop.Answer(request); });
  ASSERT_NO_FATAL_FAILURE(Configure({{"connectors",
                                      {{{"name", "itop"},
                                        {"type", "itop"},
                                        {"url", receiver.url("/webservices/rest.php?version=1.3")},
                                        {"user", "fabu-rest"},
                                        {"password", "pw"},
                                        {"organization", "Demo"}}}},
                                     {"retry", {{"initial_seconds", 1}, {"max_seconds", 2}}}}));
  AddAgents(1);
  ASSERT_NO_FATAL_FAILURE(Deploy(BuildAndUpload(kV1)));
  ASSERT_TRUE(WaitFor([&] { return AllDelivered(1); })) << Outbox().dump(2);
  const std::string server = itop.KeyOf("Server", "web-1");
  ASSERT_FALSE(server.empty());
  EXPECT_EQ(itop.Field("OtherSoftware", "c3m-video", "description", server), json(kV1).dump());
  ASSERT_TRUE(WaitFor([&] {
    auto host = As(viewer_, {"cmdb", "host", "web-1", "--json"});
    return host.exit_code == 0 &&
           json::parse(host.out)["apps"].dump().find(kV1) != std::string::npos;
  }));
  ASSERT_NO_FATAL_FAILURE(Deploy(BuildAndUpload(kV2)));
  ASSERT_TRUE(WaitFor([&] { return AllDelivered(2); })) << Outbox().dump(2);
  EXPECT_EQ(itop.Count("Server"), 1u);
  EXPECT_EQ(itop.Count("OtherSoftware"), 1u);
  EXPECT_EQ(itop.Field("OtherSoftware", "c3m-video", "description", server), json(kV2).dump());
  EXPECT_NE(std::find(itop.calls.begin(), itop.calls.end(), "core/update OtherSoftware"),
            itop.calls.end());
}

}  // namespace
}  // namespace fabu::e2e
