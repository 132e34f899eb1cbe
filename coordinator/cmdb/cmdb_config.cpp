#include "coordinator/cmdb/cmdb_config.hpp"

#include <fmt/format.h>

#include <set>

#include "coordinator/common/json_input.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::chrono::seconds> PositiveSeconds(const json& value, const std::string& path) {
  if (!value.is_number_integer() || value.get<std::int64_t>() <= 0) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("{}: expected a positive integer", path));
  }
  return std::chrono::seconds(value.get<std::int64_t>());
}

Result<ConnectorConfig> ConnectorFromJson(const json& value, const std::string& path) {
  if (auto ok = CheckObject(value, path,
                            {{"name", JsonType::kString, true},
                             {"type", JsonType::kString, true},
                             {"url", JsonType::kString, true},
                             {"ca_file", JsonType::kString},
                             {"timeout_seconds", JsonType::kInteger},
                             {"secret", JsonType::kString},
                             {"secret_file", JsonType::kString},
                             {"user", JsonType::kString},
                             {"password", JsonType::kString},
                             {"password_file", JsonType::kString},
                             {"organization", JsonType::kString},
                             {"classes", JsonType::kObject},
                             {"fields", JsonType::kObject}});
      !ok) {
    return std::unexpected(ok.error());
  }
  ConnectorConfig c;
  c.name = value["name"].get<std::string>();
  c.type = value["type"].get<std::string>();
  c.url = value["url"].get<std::string>();
  if (!ValidName(c.name)) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("{}.name: \"{}\" must be 1-64 of a-z, 0-9, '.', '_', '-'", path, c.name));
  }
  if (c.type != "webhook" && c.type != "itop") {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("{}.type: \"{}\" is not a connector type (webhook or itop)", path, c.type));
  }
  if (c.url.rfind("https://", 0) != 0 && c.url.rfind("http://", 0) != 0) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}.url: \"{}\" must start with https:// (or http://)", path, c.url));
  }
  auto text = [&](const char* name, std::string& out) {
    if (value.contains(name) && !value[name].is_null()) out = value[name].get<std::string>();
  };
  text("ca_file", c.ca_file);
  text("secret", c.secret);
  text("secret_file", c.secret_file);
  text("user", c.user);
  text("password", c.password);
  text("password_file", c.password_file);
  text("organization", c.organization);
  if (value.contains("timeout_seconds") && !value["timeout_seconds"].is_null()) {
    auto t = PositiveSeconds(value["timeout_seconds"], path + ".timeout_seconds");
    if (!t) return std::unexpected(t.error());
    c.timeout = *t;
  }
  if (c.type == "webhook") {
    if (c.secret.empty() == c.secret_file.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}: a webhook needs exactly one of secret or secret_file (the "
                              "HMAC-SHA256 key of X-Fabu-Signature)",
                              path));
    }
    for (const char* itop_only :
         {"user", "password", "password_file", "organization", "classes", "fields"}) {
      if (value.contains(itop_only)) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("{}.{}: only for type itop", path, itop_only));
      }
    }
    return c;
  }
  if (!c.secret.empty() || !c.secret_file.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: secret and secret_file are for webhooks; iTop uses user and "
                            "password",
                            path));
  }
  if (c.user.empty() || c.password.empty() == c.password_file.empty()) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("{}: iTop needs user and exactly one of password or password_file", path));
  }
  if (value.contains("classes") && !value["classes"].is_null()) {
    const json& classes = value["classes"];
    const std::string p = path + ".classes";
    if (auto ok = CheckObject(classes, p,
                              {{"server", JsonType::kString}, {"software", JsonType::kString}});
        !ok) {
      return std::unexpected(ok.error());
    }
    c.server_class = classes.value("server", c.server_class);
    c.software_class = classes.value("software", c.software_class);
  }
  if (value.contains("fields") && !value["fields"].is_null()) {
    const json& fields = value["fields"];
    const std::string p = path + ".fields";
    if (auto ok = CheckObject(fields, p,
                              {{"server_name", JsonType::kString},
                               {"software_name", JsonType::kString},
                               {"software_server", JsonType::kString},
                               {"software_version", JsonType::kString}});
        !ok) {
      return std::unexpected(ok.error());
    }
    c.server_name_field = fields.value("server_name", c.server_name_field);
    c.software_name_field = fields.value("software_name", c.software_name_field);
    c.software_server_field = fields.value("software_server", c.software_server_field);
    c.software_version_field = fields.value("software_version", c.software_version_field);
  }
  for (const std::string* field :
       {&c.server_class, &c.software_class, &c.server_name_field, &c.software_name_field,
        &c.software_server_field, &c.software_version_field}) {
    if (field->empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}: iTop class and field names must not be empty", path));
    }
  }
  return c;
}

}  // namespace

json ConnectorConfig::ToJson() const {
  json j = {{"name", name}, {"type", type}, {"url", url}, {"timeout_seconds", timeout.count()}};
  if (!ca_file.empty()) j["ca_file"] = ca_file;
  if (type == "webhook") {
    if (!secret.empty()) j["secret"] = secret;
    if (!secret_file.empty()) j["secret_file"] = secret_file;
    return j;
  }
  j["user"] = user;
  if (!password.empty()) j["password"] = password;
  if (!password_file.empty()) j["password_file"] = password_file;
  if (!organization.empty()) j["organization"] = organization;
  j["classes"] = {{"server", server_class}, {"software", software_class}};
  j["fields"] = {{"server_name", server_name_field},
                 {"software_name", software_name_field},
                 {"software_server", software_server_field},
                 {"software_version", software_version_field}};
  return j;
}

Result<CmdbConfig> CmdbConfig::FromJson(const json& value, std::string_view path) {
  const std::string p(path);
  if (auto ok =
          CheckObject(value, p, {{"connectors", JsonType::kArray}, {"retry", JsonType::kObject}});
      !ok) {
    return std::unexpected(ok.error());
  }
  CmdbConfig config;
  if (value.contains("connectors") && !value["connectors"].is_null()) {
    std::set<std::string> names;
    for (std::size_t i = 0; i < value["connectors"].size(); ++i) {
      const std::string at = fmt::format("{}.connectors[{}]", p, i);
      auto c = ConnectorFromJson(value["connectors"][i], at);
      if (!c) return std::unexpected(c.error());
      if (!names.insert(c->name).second) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("{}.name: \"{}\" is used twice", at, c->name));
      }
      config.connectors.push_back(std::move(*c));
    }
  }
  if (value.contains("retry") && !value["retry"].is_null()) {
    const json& retry = value["retry"];
    if (auto ok = CheckObject(retry, p + ".retry",
                              {{"initial_seconds", JsonType::kInteger},
                               {"max_seconds", JsonType::kInteger},
                               {"notice_give_up_seconds", JsonType::kInteger}});
        !ok) {
      return std::unexpected(ok.error());
    }
    if (retry.contains("initial_seconds")) {
      auto t = PositiveSeconds(retry["initial_seconds"], p + ".retry.initial_seconds");
      if (!t) return std::unexpected(t.error());
      config.retry_initial = *t;
    }
    if (retry.contains("max_seconds")) {
      auto t = PositiveSeconds(retry["max_seconds"], p + ".retry.max_seconds");
      if (!t) return std::unexpected(t.error());
      config.retry_max = *t;
    }
    if (retry.contains("notice_give_up_seconds")) {
      auto t =
          PositiveSeconds(retry["notice_give_up_seconds"], p + ".retry.notice_give_up_seconds");
      if (!t) return std::unexpected(t.error());
      config.notice_give_up = *t;
    }
    if (config.retry_max < config.retry_initial) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}.retry.max_seconds: must be at least initial_seconds", p));
    }
  }
  return config;
}

json CmdbConfig::ToJson() const {
  json list = json::array();
  for (const ConnectorConfig& c : connectors) list.push_back(c.ToJson());
  return {{"connectors", list},
          {"retry",
           {{"initial_seconds", retry_initial.count()},
            {"max_seconds", retry_max.count()},
            {"notice_give_up_seconds", notice_give_up.count()}}}};
}

}  // namespace fabu::coordinator
