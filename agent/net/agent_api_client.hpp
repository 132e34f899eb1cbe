// The agent's side of the agent API (protocol/agent_api.hpp): enrollment,
// the assignment long poll, events, inventory and package URLs, over an
// platform::HttpClient with the coordinator's CA pinned.
//
// Every call but Enroll sends the credential as a bearer token. Answers are
// parsed with the protocol's strict FromJson functions; a malformed answer is
// kUnavailable naming the path (the coordinator is not speaking the
// contract). An HTTP refusal is platform::StatusError's code with the coordinator's
// message. Used by one thread at a time.
//
// Several coordinators: the client is given every coordinator URL of the
// installation (each serves the whole agent API on one shared database) and
// talks to one at a time, the current server(). After a failed exchange the
// caller tells NoteFailure, which moves to the next server (round robin)
// when the current one is away: nothing answered (refused, reset, timed out,
// TLS handshake failed, the answer cut short) or it answered 503. Any other
// answer (4xx, 500, a malformed body) came from a live coordinator and
// would be the same on another one: the client stays. A Retry-After is
// remembered per server: retry_after() is what the current one asked for and
// has not run out, so a move to another server need not wait it out, but
// coming back round to the one that asked does.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "platform/http/http_client.hpp"
#include "protocol/agent_api.hpp"
#include "protocol/error.hpp"

namespace fabu::agent {

class AgentApiClient {
 public:
  // `servers` are "https://HOST:PORT" each (a trailing '/' is dropped), at
  // least one; the first is the current server to begin with.
  AgentApiClient(platform::HttpClient http, std::vector<std::string> servers,
                 std::string credential);

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

  // After a failed exchange (a call, or a package download) whose `error`
  // the caller got: remembers the answer's Retry-After for the current
  // server and, when `from_server` (not a mirror's failure), there are other
  // servers and this one is away (IsAway), makes the next one current.
  // True when it moved.
  bool NoteFailure(const Error& error, bool from_server = true);
  // Whether `error`, of the last exchange, says the server is away: no
  // whole answer came, or a 503.
  bool IsAway(const Error& error) const;

  // How long the current server asked (503 + Retry-After) to be left alone,
  // what remains of it; for the caller's backoff.
  std::optional<std::chrono::seconds> retry_after() const;

  // True when `url` is on one of the coordinators (scheme, host and port all
  // a configured server's, the path below it): only there does the
  // credential go. A mirror whose host merely starts like a server's
  // ("https://coord:8443.example.net/...") never sees it.
  bool IsOnServer(std::string_view url) const;

  platform::HttpClient& http() { return http_; }
  const std::string& server() const { return servers_[current_]; }
  const std::vector<std::string>& servers() const { return servers_; }
  const std::string& credential() const { return credential_; }

 private:
  Result<nlohmann::json> Call(std::string_view method, std::string_view path,
                              const nlohmann::json* body, std::chrono::seconds timeout,
                              long expected_status);

  platform::HttpClient http_;
  std::vector<std::string> servers_;
  std::size_t current_ = 0;
  // Per server: not to be asked again before (its Retry-After).
  std::vector<std::chrono::steady_clock::time_point> not_before_;
  std::string credential_;
  std::optional<protocol::PreflightRequest> preflight_;
};

}  // namespace fabu::agent
