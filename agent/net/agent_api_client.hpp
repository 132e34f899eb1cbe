// The agent's side of the agent API (protocol/agent_api.hpp): enrollment,
// the assignment long poll, events, inventory and package URLs, over an
// platform::HttpClient with the coordinator's CA pinned.
//
// Every call but Enroll sends the credential as a bearer token. Answers are
// parsed with the protocol's strict FromJson functions; a malformed answer is
// kUnavailable naming the path (the coordinator is not speaking the
// contract). An HTTP refusal is platform::StatusError's code with the coordinator's
// message. Used by one thread at a time.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "platform/http/http_client.hpp"
#include "protocol/agent_api.hpp"
#include "protocol/error.hpp"

namespace fabu::agent {

class AgentApiClient {
 public:
  // `server` is "https://HOST:PORT" (a trailing '/' is dropped).
  AgentApiClient(platform::HttpClient http, std::string server, std::string credential);

  Result<protocol::EnrollResponse> Enroll(const protocol::EnrollRequest& request);
  // Waits up to `wait` (at most kMaxPollWaitSeconds) for an assignment.
  Result<std::optional<protocol::Assignment>> PollAssignment(std::chrono::seconds wait);
  // The pre-flight question of the last PollAssignment's answer, if it had
  // one (taken: asked once per answer).
  std::optional<protocol::PreflightRequest> TakePreflight() {
    return std::exchange(preflight_, {});
  }
  Result<void> PostPreflight(const protocol::PreflightAnswer& answer);
  Result<protocol::EventAck> PostEvents(const protocol::EventBatch& batch);
  Result<void> PostInventory(const protocol::Inventory& inventory);
  // POST kAgentCertificatePath: a new client certificate for `csr`.
  Result<protocol::CertificateResponse> RenewCertificate(const std::string& csr);

  // Where to download an assignment's package: the coordinator's path made
  // absolute, or the mirror URL as given (which must be https).
  Result<std::string> PackageUrl(const protocol::Assignment& assignment) const;

  // The Retry-After of the last answer, a call or a package download (a 503
  // of an overloaded coordinator), for the caller's backoff.
  std::optional<std::chrono::seconds> retry_after() const { return http_.last_retry_after(); }

  // True when `url` is on the coordinator itself (scheme, host and port all
  // the server's, the path below it): only there does the credential go. A
  // mirror whose host merely starts like the server's
  // ("https://coord:8443.example.net/...") never sees it.
  bool IsOnServer(std::string_view url) const {
    return url == server_ ||
           (url.starts_with(server_) && url.substr(server_.size()).starts_with('/'));
  }

  platform::HttpClient& http() { return http_; }
  const std::string& server() const { return server_; }
  const std::string& credential() const { return credential_; }

 private:
  Result<nlohmann::json> Call(std::string_view method, std::string_view path,
                              const nlohmann::json* body, std::chrono::seconds timeout,
                              long expected_status);

  platform::HttpClient http_;
  std::string server_;
  std::string credential_;
  std::optional<protocol::PreflightRequest> preflight_;
};

}  // namespace fabu::agent
