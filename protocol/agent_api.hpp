// The agent API: what the coordinator and its agents say to each other.
//
// Transport: HTTPS to the coordinator, the agent pinning the coordinator's CA
// (DIR/ca.pem). Every request but enrollment carries the agent's credential:
//   Authorization: Bearer <credential>
// The credential (64 hex digits, 256 random bits) is issued once at
// enrollment and stored hashed by the coordinator. A credential never reads
// another host's assignment, posts its events, or downloads a package that
// was not assigned to it (403).
//
//   POST kEnrollPath        EnrollRequest       -> 201 EnrollResponse
//   GET  kAssignmentPath?wait=SECONDS             -> 200 AssignmentResponse
//        Long poll: answers at once when the host has an unfinished
//        assignment, else when one is made, else after `wait` (max 60 s) with
//        {"assignment": null}. An assignment is repeated until the agent
//        reports a final step for it.
//   POST kEventsPath        EventBatch          -> 200 EventAck
//        Events are stored once per (deployment, sequence) however often they
//        are sent; the ack names, per deployment, the highest sequence stored
//        so the agent may drop what it journaled up to there.
//   POST kInventoryPath     Inventory           -> 200 {}
//   GET  kAgentPackagesPath + ID                  -> 200/206 the package file
//        Range (bytes=N-) resumes a download; ETag is "\"ID\"".
//   POST kAgentCertificatePath  CertificateRequest -> 200 CertificateResponse
//        Renews the host's client certificate (the request must come with the
//        current one and the credential).
//
// Client certificates (mutual TLS, docs/security.md): an agent that sent a
// CSR at enrollment holds a certificate of the coordinator's CA whose CN is
// its host name; from then on each of its requests must come with that
// certificate in the TLS handshake as well as the credential.
//
// JSON field names below are the wire names. FromJson functions are strict:
// wrong types and unknown fields are kInvalidArgument naming the field path.
// Value types; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/deployment_event.hpp"
#include "protocol/error.hpp"

namespace fabu::protocol {

inline constexpr std::string_view kEnrollPath = "/api/v1/agent/enroll";
inline constexpr std::string_view kAssignmentPath = "/api/v1/agent/assignment";
inline constexpr std::string_view kEventsPath = "/api/v1/agent/events";
inline constexpr std::string_view kInventoryPath = "/api/v1/agent/inventory";
inline constexpr std::string_view kAgentPackagesPath = "/api/v1/agent/packages/";
inline constexpr std::string_view kAgentCertificatePath = "/api/v1/agent/certificate";
inline constexpr std::string_view kPreflightPath = "/api/v1/agent/preflight";
inline constexpr int kMaxPollWaitSeconds = 60;

// One application as installed on a host (what the agent found on disk).
struct InstalledApp {
  std::string name;
  std::string current;                // version `current` points at; "" when none
  std::vector<std::string> releases;  // versions kept locally, oldest first
};

// What a host reports about itself: at enrollment, on start, after every
// deployment.
struct Inventory {
  std::string hostname;
  std::string os;      // "linux"
  std::string kernel;  // uname release
  std::string arch;    // "x86_64"
  std::uint32_t cpus = 0;
  std::uint64_t memory_bytes = 0;
  std::string agent_version;
  std::vector<InstalledApp> apps;
};
nlohmann::json InventoryToJson(const Inventory& inventory);
Result<Inventory> InventoryFromJson(const nlohmann::json& json, std::string_view path = "");

// Bounds of what an agent may send (enrollment is public: nothing of it is
// unbounded). FromJson refuses more with the field's path.
inline constexpr std::size_t kMaxTokenBytes = 128;     // tokens are 64 hex digits
inline constexpr std::size_t kMaxHostNameBytes = 253;  // a DNS name
inline constexpr std::size_t kMaxLabels = 64;          // labels asked for at enrollment
inline constexpr std::size_t kMaxLabelKeyBytes = 63;
inline constexpr std::size_t kMaxLabelValueBytes = 253;
inline constexpr std::size_t kMaxFactBytes = 256;  // os, kernel, arch, agent_version
inline constexpr std::size_t kMaxApps = 1024;
inline constexpr std::size_t kMaxAppNameBytes = 128;
inline constexpr std::size_t kMaxVersionBytes = 64;
inline constexpr std::size_t kMaxReleasesPerApp = 256;

// A DNS host name: labels of 1-63 of [A-Za-z0-9-] joined by '.', at most
// 253 characters. The error quotes at most 64 bytes of `name`.
Result<void> CheckDnsName(std::string_view name);

struct EnrollRequest {
  std::string token;                          // the one-time enrollment token
  std::string name;                           // host name in fabu: [a-z0-9.-], 1-64
  std::map<std::string, std::string> labels;  // added to the token's labels
  Inventory inventory;
  // Optional, 64 lower-case hex digits the agent chose at random for this
  // enrollment and sends again on every retry of it. With it a retry of an
  // enrollment that committed (its answer lost) gets the same answer again,
  // credential included; without it such a retry is refused (409/403).
  std::string enroll_key;
  // Optional: a PEM certificate signing request (PKCS#10) for the agent's own
  // key, CN = `name`. The coordinator answers a client certificate for it.
  std::string csr;
};
nlohmann::json EnrollRequestToJson(const EnrollRequest& request);
Result<EnrollRequest> EnrollRequestFromJson(const nlohmann::json& json);

struct EnrollResponse {
  std::string name;
  std::string credential;                     // shown once; the agent stores it 0600
  std::map<std::string, std::string> labels;  // the host's labels after enrollment
  std::string certificate;                    // PEM; "" when the request had no CSR
};
nlohmann::json EnrollResponseToJson(const EnrollResponse& response);
Result<EnrollResponse> EnrollResponseFromJson(const nlohmann::json& json);

// A PEM CSR is at most this long (a P-256 or Ed25519 CSR is under 1 KiB).
inline constexpr std::size_t kMaxCsrBytes = 8192;

struct CertificateRequest {
  std::string csr;  // PEM, CN = the host's name
};
nlohmann::json CertificateRequestToJson(const CertificateRequest& request);
Result<CertificateRequest> CertificateRequestFromJson(const nlohmann::json& json);

struct CertificateResponse {
  std::string certificate;  // PEM
  std::string serial;       // lower-case hex
  std::string not_after;    // RFC 3339
};
nlohmann::json CertificateResponseToJson(const CertificateResponse& response);
Result<CertificateResponse> CertificateResponseFromJson(const nlohmann::json& json);

// Work for one host: install a package, or restore the previous release.
struct Assignment {
  std::string deployment;  // id, unique per (release, host, attempt)
  std::string release;     // "R-12"
  DeploymentKind kind = DeploymentKind::kInstall;
  std::string app;         // package name
  std::string version;     // package version (install) or "" (rollback)
  std::string package_id;  // SHA-256 of the package file; "" for a rollback without package
  std::uint64_t package_size = 0;
  // Where to fetch it: a path on the coordinator (kAgentPackagesPath + id) or
  // an absolute URL of a mirror. The agent trusts only signature and digest.
  std::string package_url;
  std::int64_t host_timeout_seconds = 0;  // 0: no limit
  // Observation: after the health check passed, the agent
  // reports `observing` and re-runs the health check every
  // observe_interval_seconds until observe_seconds have passed, then reports
  // `succeeded`; a failing check fails the host (failed_step `observing`) and
  // it rolls back. 0: no observation. An interval of 0 (or longer than the
  // period) checks once, when the period ends. Both are optional on the wire
  // and sent only when not 0, so older agents and coordinators understand
  // the message.
  std::int64_t observe_seconds = 0;
  std::int64_t observe_interval_seconds = 0;
};
nlohmann::json AssignmentToJson(const Assignment& assignment);
Result<Assignment> AssignmentFromJson(const nlohmann::json& json, std::string_view path = "");

// A pre-flight question (`fabu release preflight`): could this host install
// `version` of `app` now? Nothing is downloaded or installed; the host
// answers from what it knows of itself (POST kPreflightPath, PreflightAnswer).
struct PreflightRequest {
  std::string id;  // "R-7#2": the release and the round of pre-flight
  std::string release;
  std::string app;
  std::string version;
  std::string package_id;
  std::uint64_t package_size = 0;              // the .fabu file
  std::uint64_t unpacked_size = 0;             // the tree it extracts to (every file's size)
  std::string key_id;                          // the publisher key that signed it
  std::map<std::string, std::string> targets;  // the manifest's (os, arch, ...)
};
nlohmann::json PreflightRequestToJson(const PreflightRequest& request);
Result<PreflightRequest> PreflightRequestFromJson(const nlohmann::json& json,
                                                  std::string_view path = "");

struct PreflightAnswer {
  std::string id;  // PreflightRequest::id
  bool ready = false;
  std::vector<std::string> reasons;  // why not, each in words; empty when ready
  std::uint64_t free_bytes = 0;      // free in the apps root
  std::string installed_version;     // of the app now; "" when none
};
nlohmann::json PreflightAnswerToJson(const PreflightAnswer& answer);
Result<PreflightAnswer> PreflightAnswerFromJson(const nlohmann::json& json);

// GET kAssignmentPath answers {"assignment": Assignment | null} and, when
// the host has a pre-flight question to answer, "preflight": PreflightRequest.
nlohmann::json AssignmentResponseToJson(
    const std::optional<Assignment>& assignment,
    const std::optional<PreflightRequest>& preflight = std::nullopt);
Result<std::optional<Assignment>> AssignmentResponseFromJson(const nlohmann::json& json);
// The pre-flight question of an assignment response, if it has one.
Result<std::optional<PreflightRequest>> PreflightOfAssignmentResponse(const nlohmann::json& json);

struct EventBatch {
  std::vector<DeploymentEvent> events;
};
nlohmann::json EventBatchToJson(const EventBatch& batch);
Result<EventBatch> EventBatchFromJson(const nlohmann::json& json);

// Per deployment, the highest sequence number the coordinator has stored.
struct EventAck {
  std::map<std::string, std::uint64_t> through;
};
nlohmann::json EventAckToJson(const EventAck& ack);
Result<EventAck> EventAckFromJson(const nlohmann::json& json);

}  // namespace fabu::protocol
