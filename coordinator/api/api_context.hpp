// What the API handlers share: the store, the data directory and the
// configuration. Owned by the daemon (daemon/daemon.cpp), which outlives every
// handler; handlers run on worker threads and may use all of it concurrently
// (the Store serializes itself, so does the WakeupHub; the rest is read-only).
#pragma once

#include <string_view>

#include "coordinator/audit/last_check.hpp"
#include "coordinator/auth/sessions.hpp"
#include "coordinator/auth/token_cache.hpp"
#include "coordinator/common/data_dir.hpp"
#include "coordinator/common/secret_box.hpp"
#include "coordinator/common/wakeup_hub.hpp"
#include "coordinator/config/config.hpp"
#include "coordinator/hosts/credential_cache.hpp"
#include "coordinator/hosts/enroll_refusals.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/hosts/seen_marks.hpp"
#include "coordinator/metrics/metrics.hpp"
#include "coordinator/release/release_plan.hpp"
#include "coordinator/release/workflow.hpp"
#include "coordinator/server/router.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

struct ApiContext {
  Store& store;
  DataDir data;
  const CoordinatorConfig& config;
  WakeupHub& wakeups;                       // notified when an assignment is made
  CredentialCache& agent_credentials;       // forgotten when a host is removed
  UserTokenCache& user_tokens;              // forgotten when a token or user changes
  const SecretBox& secrets;                 // seals secrets stored in the store
  EnrollRefusals& enroll_refusals;          // per address: what of them is audited
  CoordinatorMetrics* metrics = nullptr;    // GET /metrics; none when null
  SignInThrottle* sign_ins = nullptr;       // console sign-ins; unthrottled when null
  const ServerLoad* server_load = nullptr;  // the server's figures for /metrics; may be null
  // Agents' client certificates: the mode and the CA's signer (enrollment,
  // renewal). Null: no certificate is issued (a CSR is refused).
  const EnrollCertificates* agent_certificates = nullptr;
  // The daemon's last check of the audit chain (GET /api/v1/audit/watch);
  // "not checked yet" when null.
  const LastAuditCheck* last_audit_check = nullptr;
  // Hosts seen by their agents' polls, written together by the daemon
  // (hosts/seen_marks.hpp); not marked when null.
  SeenMarks* seen_marks = nullptr;
};

// What every area of the API needs alike.
// The time a request acts at: seconds since the epoch, by the store's clock
// (common/clock.hpp).
protocol::UnixSeconds Now(const ApiContext& api);
// The same to the millisecond: what a release's history records.
release::Instant NowInstant(const ApiContext& api);
// Query parameter `name` as an integer from `min` to `max`; `fallback` when
// absent; kInvalidArgument naming the parameter, its range and the text
// otherwise.
Result<std::int64_t> QueryNumber(const RequestContext& ctx, std::string_view name,
                                 std::int64_t fallback, std::int64_t min, std::int64_t max);
// How release plans are read here (the configured categories).
release::PlanParseOptions PlanOptions(const ApiContext& api);
// The authenticated user as the release workflow knows people.
release::Actor ActorOf(const RequestContext& ctx);

// What the server is told of the API (ServerSettings, server/http_server.hpp;
// the daemon passes both):
// Whether `path` is agents' traffic, which the connection cap applies to:
// every path of the agent API (/api/v1/agent/), enrollment included.
bool IsAgentTraffic(std::string_view path);
// The wave hold's policy (wakeup_hub.hpp, "Holds"): while a wave is being
// assigned in parts, a connection that has just answered an agent's request
// reads its next one only once the hold ends, so the wave's answers go out
// first. People's requests are not held, nor the request after a long poll
// that ran out (`ran_out`): that is the next poll, maybe for the very wave
// being assigned.
bool HoldNextRequest(const RequestContext& ctx, bool ran_out);

// Registers every route of /healthz and /api/v1/. Each area has its own
// Register*Routes in api/<area>_api.cpp; add a new area's call here.
void RegisterAllRoutes(Router& router, const ApiContext& api);

void RegisterHealthRoutes(Router& router, const ApiContext& api);
// GET /api/v1/openapi.yaml: the contract (api/openapi.hpp).
void RegisterOpenApiRoute(Router& router);
void RegisterUserRoutes(Router& router, const ApiContext& api);
void RegisterPackageRoutes(Router& router, const ApiContext& api);
void RegisterAuditRoutes(Router& router, const ApiContext& api);
void RegisterReleaseRoutes(Router& router, const ApiContext& api);
void RegisterHostRoutes(Router& router, const ApiContext& api);
void RegisterRolloutRoutes(Router& router, const ApiContext& api);
void RegisterAgentRoutes(Router& router, const ApiContext& api);
void RegisterCmdbRoutes(Router& router, const ApiContext& api);
void RegisterNotifyRoutes(Router& router, const ApiContext& api);
void RegisterRecordsRoutes(Router& router, const ApiContext& api);
// The web console: its pages (GET /, GET /ui/{file}) and its sessions
// (/api/v1/session).
void RegisterConsoleRoutes(Router& router);
void RegisterSessionRoutes(Router& router, const ApiContext& api);
// The console's session timeouts, as config.json sets them.
SessionLimits ConsoleSessionLimits(const CoordinatorConfig& config);

}  // namespace fabu::coordinator
