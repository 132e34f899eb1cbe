#include "coordinator/cmdb/connectors.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <sstream>

#include "coordinator/cmdb/outbound.hpp"
#include "packaging/keys.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;

// The first 300 bytes of an answer, for an error message.
std::string Excerpt(const std::string& body) {
  std::string out = body.substr(0, 300);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return body.size() > 300 ? out + "..." : out;
}

Result<std::string> ReadSecret(const std::filesystem::path& data_root, const std::string& file,
                               const std::string& what) {
  std::filesystem::path path(file);
  if (path.is_relative()) path = data_root / path;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: cannot read {}", what, path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("{}: {} is empty", what, path.string()));
  }
  return secret;
}

class WebhookConnector final : public Connector {
 public:
  WebhookConnector(ConnectorConfig config, std::string secret)
      : config_(std::move(config)), secret_(std::move(secret)) {}
  const std::string& name() const override { return config_.name; }
  std::string_view type() const override { return "webhook"; }

  Result<void> Deliver(const OutboxMessage& message) override {
    json payload = json::parse(message.payload, nullptr, false);
    platform::HttpRequest request;
    request.url = config_.url;
    request.timeout = config_.timeout;
    request.body = message.payload;
    request.headers = {"Content-Type: application/json",
                       "X-Fabu-Signature: " + WebhookSignature(secret_, message.payload),
                       "Idempotency-Key: " + message.idempotency_key,
                       "X-Fabu-Event: " + (payload.is_object() ? payload.value("event", "") : "")};
    auto response = PostOutbound(std::move(request), config_.ca_file);
    if (!response) return std::unexpected(response.error());
    if (response->status < 200 || response->status >= 300) {
      return Fail(ErrorCode::kUnavailable, fmt::format("POST {}: HTTP {} {}", config_.url,
                                                       response->status, Excerpt(response->body)));
    }
    return {};
  }

 private:
  ConnectorConfig config_;
  std::string secret_;
};

class ItopConnector final : public Connector {
 public:
  ItopConnector(ConnectorConfig config, std::string password)
      : config_(std::move(config)), password_(std::move(password)) {}
  const std::string& name() const override { return config_.name; }
  std::string_view type() const override { return "itop"; }

  Result<void> Deliver(const OutboxMessage& message) override {
    json payload = json::parse(message.payload, nullptr, false);
    if (!payload.is_object()) {
      return Fail(ErrorCode::kInternal,
                  fmt::format("outbox message {}: payload is not JSON", message.id));
    }
    const std::string host = payload.value("host", ""), package = payload.value("package", ""),
                      version = payload.value("installed_version", "");
    const std::string comment =
        fmt::format("fabu {} {}", payload.value("release", ""), payload.value("event", ""));

    // The server (a configuration item named like the host).
    auto server = FindOne(config_.server_class, {{config_.server_name_field, host}});
    if (!server) return std::unexpected(server.error());
    std::string server_key = *server;
    if (server_key.empty()) {
      json fields = {{config_.server_name_field, host}};
      if (!config_.organization.empty()) fields["org_id"] = {{"name", config_.organization}};
      auto created = Call({{"operation", "core/create"},
                           {"comment", comment},
                           {"class", config_.server_class},
                           {"output_fields", "id"},
                           {"fields", fields}});
      if (!created) return std::unexpected(created.error());
      auto key = FirstKey(*created);
      if (!key)
        return std::unexpected(key.error().WithContext("core/create " + config_.server_class));
      server_key = *key;
    }
    if (version.empty()) return {};  // nothing known to write on the software instance

    // The software instance: by name on that server.
    auto software = FindOne(config_.software_class, {{config_.software_name_field, package},
                                                     {config_.software_server_field, server_key}});
    if (!software) return std::unexpected(software.error());
    if (software->empty()) {
      json fields = {{config_.software_name_field, package},
                     {config_.software_server_field, server_key},
                     {config_.software_version_field, version}};
      if (!config_.organization.empty()) fields["org_id"] = {{"name", config_.organization}};
      auto created = Call({{"operation", "core/create"},
                           {"comment", comment},
                           {"class", config_.software_class},
                           {"output_fields", "id"},
                           {"fields", fields}});
      if (!created) return std::unexpected(created.error());
      return {};
    }
    auto updated = Call({{"operation", "core/update"},
                         {"comment", comment},
                         {"class", config_.software_class},
                         {"key", *software},
                         {"output_fields", "id"},
                         {"fields", {{config_.software_version_field, version}}}});
    if (!updated) return std::unexpected(updated.error());
    return {};
  }

 private:
  // One REST call; the answer when its code is 0.
  Result<json> Call(const json& request) {
    platform::HttpRequest post;
    post.url = config_.url;
    post.timeout = config_.timeout;
    post.headers = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"};
    post.body = platform::FormEncode(
        {{"auth_user", config_.user}, {"auth_pwd", password_}, {"json_data", request.dump()}});
    const std::string operation = request.value("operation", "");
    auto response = PostOutbound(std::move(post), config_.ca_file);
    if (!response) return std::unexpected(response.error().WithContext("iTop " + operation));
    if (response->status < 200 || response->status >= 300) {
      return Fail(ErrorCode::kUnavailable, fmt::format("iTop {}: HTTP {} {}", operation,
                                                       response->status, Excerpt(response->body)));
    }
    json answer = json::parse(response->body, nullptr, false);
    if (!answer.is_object() || !answer.contains("code") || !answer["code"].is_number_integer()) {
      return Fail(ErrorCode::kUnavailable, fmt::format("iTop {}: the answer is not iTop's JSON: {}",
                                                       operation, Excerpt(response->body)));
    }
    if (answer["code"].get<int>() != 0) {
      return Fail(ErrorCode::kUnavailable,
                  fmt::format("iTop {} {}: code {}: {}", operation, request.value("class", ""),
                              answer["code"].get<int>(),
                              answer.value("message", std::string("(no message)"))));
    }
    return answer;
  }

  // The key of the one object of `cls` matching `criteria`; "" when none.
  Result<std::string> FindOne(const std::string& cls, const json& criteria) {
    auto found = Call(
        {{"operation", "core/get"}, {"class", cls}, {"key", criteria}, {"output_fields", "id"}});
    if (!found) return std::unexpected(found.error());
    const json& objects = (*found)["objects"];
    if (!objects.is_object() || objects.empty()) return std::string();
    if (objects.size() > 1) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("iTop core/get {} {}: {} objects match; the natural key must be "
                              "unique",
                              cls, criteria.dump(), objects.size()));
    }
    return FirstKey(*found);
  }

  static Result<std::string> FirstKey(const json& answer) {
    const json& objects = answer["objects"];
    if (objects.is_object() && !objects.empty()) {
      const json& object = objects.begin().value();
      if (object.is_object() && object.contains("key")) {
        const json& key = object["key"];
        if (key.is_string()) return key.get<std::string>();
        if (key.is_number_integer()) return std::to_string(key.get<long long>());
      }
    }
    return Fail(ErrorCode::kUnavailable, "iTop answered no object key");
  }

  ConnectorConfig config_;
  std::string password_;
};

}  // namespace

std::string WebhookSignature(std::string_view secret, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &size);
  return "sha256=" + packaging::ToHex(std::span<const std::uint8_t>(mac, size));
}

Result<std::vector<std::unique_ptr<Connector>>> MakeConnectors(
    const CmdbConfig& config, const std::filesystem::path& data_root) {
  std::vector<std::unique_ptr<Connector>> out;
  for (const ConnectorConfig& c : config.connectors) {
    const std::string what = fmt::format("cmdb connector {}", c.name);
    if (c.type == "webhook") {
      std::string secret = c.secret;
      if (secret.empty()) {
        auto read = ReadSecret(data_root, c.secret_file, what + " secret_file");
        if (!read) return std::unexpected(read.error());
        secret = *read;
      }
      out.push_back(std::make_unique<WebhookConnector>(c, secret));
    } else {
      std::string password = c.password;
      if (password.empty()) {
        auto read = ReadSecret(data_root, c.password_file, what + " password_file");
        if (!read) return std::unexpected(read.error());
        password = *read;
      }
      out.push_back(std::make_unique<ItopConnector>(c, password));
    }
  }
  return out;
}

}  // namespace fabu::coordinator
