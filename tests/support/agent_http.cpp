#include "tests/support/agent_http.hpp"

#include <gtest/gtest.h>

#include "platform/http/http_client.hpp"

namespace fabu::testing {

AgentHttpClient::AgentHttpClient(std::string server, std::filesystem::path ca,
                                 std::filesystem::path identity)
    : server_(std::move(server)) {
  platform::HttpClientOptions options;
  options.ca_file = ca.string();
  if (!identity.empty()) {
    options.client_cert_file = identity.string();  // certificate and key in one file
    options.client_key_file = identity.string();
  }
  auto client = platform::HttpClient::Create(std::move(options));
  EXPECT_TRUE(client) << client.error().message();
  if (client) client_ = std::make_unique<platform::HttpClient>(std::move(*client));
}

AgentHttpClient::~AgentHttpClient() = default;

HttpReply AgentHttpClient::Request(const std::string& method, const std::string& path,
                                   const std::string& credential, const std::string& body,
                                   const std::vector<std::string>& headers) {
  if (!client_) return {};
  platform::HttpRequest request;
  request.method = method;
  request.url = server_ + path;
  request.bearer = credential;
  request.headers = headers;
  if (!body.empty()) {
    request.headers.emplace_back("Content-Type: application/json");
    request.body = body;
  }
  request.timeout = std::chrono::seconds(600);
  auto response = client_->Send(request);
  EXPECT_TRUE(response) << response.error().message();
  if (!response) return {};
  return HttpReply{static_cast<int>(response->status), std::move(response->body),
                   std::move(response->headers)};
}

}  // namespace fabu::testing
