// A test host played with fabu's one HTTP client (platform/http) against a
// real coordinator: the coordinator's CA pinned and never a proxy, as
// fabu-agent does. The client (and its connection) is kept between
// requests; one thread at a time.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fabu::platform {
class HttpClient;
}

namespace fabu::testing {

struct HttpReply {
  int status = 0;  // 0 when the request could not be made (a test failure is recorded)
  std::string body;
  std::string headers;  // "Name: value\r\n" lines
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

class AgentHttpClient {
 public:
  // `server` is "https://127.0.0.1:PORT", `ca` the coordinator's ca.pem;
  // `identity` an agent's client.pem (its certificate and key) to present in
  // the TLS handshake, as that agent does, or none.
  AgentHttpClient(std::string server, std::filesystem::path ca,
                  std::filesystem::path identity = {});
  ~AgentHttpClient();
  AgentHttpClient(const AgentHttpClient&) = delete;
  AgentHttpClient& operator=(const AgentHttpClient&) = delete;

  // `method` ("GET" or "POST") of `path` with "Authorization: Bearer
  // <credential>" when `credential` is not "", `body` sent as
  // application/json when not "", and `headers` ("Name: value") added.
  HttpReply Request(const std::string& method, const std::string& path,
                    const std::string& credential, const std::string& body = "",
                    const std::vector<std::string>& headers = {});

 private:
  std::string server_;
  std::unique_ptr<platform::HttpClient> client_;
};

}  // namespace fabu::testing
