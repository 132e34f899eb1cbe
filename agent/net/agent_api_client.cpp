#include "agent/net/agent_api_client.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace fabu::agent {

namespace {

constexpr std::chrono::seconds kRequestTimeout{60};
// A long poll may take `wait`; allow the answer this much longer to arrive.
constexpr std::chrono::seconds kPollMargin{30};

}  // namespace

AgentApiClient::AgentApiClient(platform::HttpClient http, std::vector<std::string> servers,
                               std::string credential)
    : http_(std::move(http)), servers_(std::move(servers)), credential_(std::move(credential)) {
  if (servers_.empty()) servers_.emplace_back();  // every call then fails naming no host
  for (std::string& server : servers_) {
    while (!server.empty() && server.back() == '/') server.pop_back();
  }
  not_before_.resize(servers_.size());
}

bool AgentApiClient::IsAway(const Error& error) const {
  return error.code() == ErrorCode::kUnavailable &&
         (http_.last_delivery() != platform::HttpDelivery::kAnswered || http_.last_status() == 503);
}

bool AgentApiClient::NoteFailure(const Error& error, bool from_server) {
  if (auto after = http_.last_retry_after()) {
    not_before_[current_] = std::chrono::steady_clock::now() + *after;
  }
  if (!from_server || servers_.size() < 2 || !IsAway(error)) return false;
  current_ = (current_ + 1) % servers_.size();
  return true;
}

std::optional<std::chrono::seconds> AgentApiClient::retry_after() const {
  const auto left = not_before_[current_] - std::chrono::steady_clock::now();
  if (left <= std::chrono::steady_clock::duration::zero()) return std::nullopt;
  return std::chrono::ceil<std::chrono::seconds>(left);
}

bool AgentApiClient::IsOnServer(std::string_view url) const {
  return std::ranges::any_of(servers_, [&](const std::string& server) {
    return !server.empty() && (url == server || (url.starts_with(server) &&
                                                 url.substr(server.size()).starts_with('/')));
  });
}

Result<nlohmann::json> AgentApiClient::Call(std::string_view method, std::string_view path,
                                            const nlohmann::json* body,
                                            std::chrono::seconds timeout, long expected_status) {
  const std::string url = server() + std::string(path);
  // Bodies carry what hooks printed and what the host holds: never let a
  // stray byte make the agent throw (ill-formed UTF-8 becomes U+FFFD).
  std::string text = body != nullptr
                         ? body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                         : std::string();
  platform::HttpRequest request;
  request.method = std::string(method);
  request.url = url;
  request.bearer = credential_;
  request.headers = {"Accept: application/json"};
  if (body != nullptr) {
    request.headers.emplace_back("Content-Type: application/json");
    request.body = std::move(text);
  }
  request.timeout = timeout;
  auto response = http_.Send(request);
  if (!response) return std::unexpected(response.error());
  const std::string what = fmt::format("{} {}", method, path);
  if (response->status != expected_status) {
    if (response->status >= 200 && response->status < 300) {
      return Fail(ErrorCode::kUnavailable, fmt::format("{}: unexpected HTTP {} (wanted {})", what,
                                                       response->status, expected_status));
    }
    return std::unexpected(platform::StatusError(what, *response));
  }
  auto json = nlohmann::json::parse(response->body, nullptr, false);
  if (json.is_discarded()) {
    return Fail(ErrorCode::kUnavailable, fmt::format("{}: the answer is not JSON", what));
  }
  return json;
}

Result<protocol::EnrollResponse> AgentApiClient::Enroll(const protocol::EnrollRequest& request) {
  const auto body = protocol::EnrollRequestToJson(request);
  auto json = Call("POST", protocol::kEnrollPath, &body, kRequestTimeout, 201);
  if (!json) return std::unexpected(json.error());
  auto response = protocol::EnrollResponseFromJson(*json);
  if (!response) {
    return Fail(ErrorCode::kUnavailable,
                fmt::format("POST {}: malformed answer: {}", protocol::kEnrollPath,
                            response.error().message()));
  }
  return response;
}

Result<std::optional<protocol::Assignment>> AgentApiClient::PollAssignment(
    std::chrono::seconds wait) {
  wait = std::clamp(wait, std::chrono::seconds(0),
                    std::chrono::seconds(protocol::kMaxPollWaitSeconds));
  // preflight=1: this agent answers pre-flight questions (an older one, or
  // a client that does not, is never sent them).
  const std::string path =
      fmt::format("{}?wait={}&preflight=1", protocol::kAssignmentPath, wait.count());
  auto json = Call("GET", path, nullptr, wait + kPollMargin, 200);
  if (!json) return std::unexpected(json.error());
  auto assignment = protocol::AssignmentResponseFromJson(*json);
  if (!assignment) {
    return Fail(ErrorCode::kUnavailable,
                fmt::format("GET {}: malformed answer: {}", protocol::kAssignmentPath,
                            assignment.error().message()));
  }
  auto preflight = protocol::PreflightOfAssignmentResponse(*json);
  if (!preflight) {
    return Fail(ErrorCode::kUnavailable,
                fmt::format("GET {}: malformed answer: {}", protocol::kAssignmentPath,
                            preflight.error().message()));
  }
  preflight_ = std::move(*preflight);
  return assignment;
}

Result<void> AgentApiClient::PostPreflight(const protocol::PreflightAnswer& answer) {
  const auto body = protocol::PreflightAnswerToJson(answer);
  auto json = Call("POST", protocol::kPreflightPath, &body, kRequestTimeout, 200);
  if (!json) return std::unexpected(json.error());
  return {};
}

Result<protocol::EventAck> AgentApiClient::PostEvents(const protocol::EventBatch& batch) {
  const auto body = protocol::EventBatchToJson(batch);
  auto json = Call("POST", protocol::kEventsPath, &body, kRequestTimeout, 200);
  if (!json) return std::unexpected(json.error());
  auto ack = protocol::EventAckFromJson(*json);
  if (!ack) {
    return Fail(ErrorCode::kUnavailable, fmt::format("POST {}: malformed answer: {}",
                                                     protocol::kEventsPath, ack.error().message()));
  }
  return ack;
}

Result<void> AgentApiClient::PostInventory(const protocol::Inventory& inventory) {
  const auto body = protocol::InventoryToJson(inventory);
  auto json = Call("POST", protocol::kInventoryPath, &body, kRequestTimeout, 200);
  if (!json) return std::unexpected(json.error());
  return {};
}

Result<protocol::CertificateResponse> AgentApiClient::RenewCertificate(const std::string& csr) {
  const auto body = protocol::CertificateRequestToJson({csr});
  auto json = Call("POST", protocol::kAgentCertificatePath, &body, kRequestTimeout, 200);
  if (!json) return std::unexpected(json.error());
  auto answer = protocol::CertificateResponseFromJson(*json);
  if (!answer) {
    return Fail(ErrorCode::kUnavailable,
                fmt::format("POST {}: malformed answer: {}", protocol::kAgentCertificatePath,
                            answer.error().message()));
  }
  return answer;
}

Result<std::string> AgentApiClient::PackageUrl(const protocol::Assignment& assignment) const {
  const std::string& url = assignment.package_url;
  if (url.empty()) {
    return server() + std::string(protocol::kAgentPackagesPath) + assignment.package_id;
  }
  if (url.starts_with("/")) return server() + url;
  if (url.starts_with("https://")) return url;
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("assignment {}: package_url \"{}\" is neither a path on the "
                          "coordinator nor an https:// URL",
                          assignment.deployment, url));
}

}  // namespace fabu::agent
