// The agent API (protocol/agent_api.hpp): enrollment, the assignment long
// poll, events, inventory and package downloads. Every route but enrollment
// is for enrolled agents only (RouteOptions::Agent), and a host only ever
// sees its own deployments and their packages (403 otherwise).
#include "protocol/agent_api.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <random>

#include "coordinator/api/api_context.hpp"
#include "coordinator/api/idle_hosts.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/deploy/preflight.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/hosts/seen_marks.hpp"
#include "coordinator/metrics/metrics.hpp"
#include "coordinator/store/read_batcher.hpp"
#include "coordinator/store/write_batcher.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;

// ?wait=SECONDS: 0..kMaxPollWaitSeconds (more is capped), absent = 0.
Result<int> PollWait(const RequestContext& ctx) {
  auto text = ctx.Query("wait");
  if (!text || text->empty()) return 0;
  int seconds = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), seconds);
  if (ec != std::errc() || end != text->data() + text->size() || seconds < 0) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("wait: \"{}\" is not a number of seconds (0 to {})", *text,
                            protocol::kMaxPollWaitSeconds));
  }
  return std::min(seconds, protocol::kMaxPollWaitSeconds);
}

// How long a poll with nothing to do is held: to a random point in the last
// quarter of its wait, not to its end. A fleet that polls at once (after a
// restart or a failover, every agent within a second or two) would
// otherwise come back at once every `wait` seconds, a wave of reads and
// seen-marks each time; answered this way, it spreads over a few cycles.
std::chrono::milliseconds PollHold(int wait_seconds) {
  thread_local std::mt19937 random{std::random_device{}()};
  const int full = wait_seconds * 1000;
  return std::chrono::milliseconds(full - std::uniform_int_distribution<int>(0, full / 4)(random));
}

// A long poll whose host had nothing to do at its last look, and nothing
// announced since, is held without another look (api/idle_hosts.hpp); but
// each host's poll looks at least this often.
constexpr std::chrono::minutes kTrustIdleFor{2};

// A poll's look at the store: what its host must do now.
struct PollLook {
  std::string host;
  bool woken = false;  // woken while waiting (a second look)
  bool asks_preflight = false;
};
struct Open {
  std::optional<DeploymentRecord> deployment;
  std::optional<protocol::PreflightRequest> preflight;
};

bool IsPackageId(std::string_view id) {
  return id.size() == 64 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

void RegisterAgentRoutes(Router& router, const ApiContext& api) {
  // Agents' events are written in batches (store/write_batcher.hpp), and
  // mark their hosts seen in the same write.
  const AuditOrigin coordinator_origin{"fabu-coordinator", "system", "", "local"};
  auto events = std::make_shared<WriteBatcher<EventPost, protocol::EventAck>>(
      api.store, coordinator_origin,
      [&wakeups = api.wakeups, options = PlanOptions(api)](Transaction& tx,
                                                           std::span<const EventPost> posts) {
        auto wake = std::make_shared<Wakeups>();
        auto answers = StoreEventPosts(tx, posts, tx.clock().Seconds(), options, *wake);
        std::vector<std::string> hosts;
        for (std::size_t i = 0; i < posts.size(); ++i) {
          if (answers[i]) hosts.push_back(posts[i].host);
        }
        TouchHosts(tx, hosts, tx.clock().Seconds(), kSeenEverySeconds);
        // A wave that ended with these events may have started the next one.
        tx.AfterCommit([&wakeups, wake] { WakeHosts(wakeups, *wake); });
        return answers;
      });

  // Polls are read together (store/read_batcher.hpp): those that come
  // while the reading sessions are busy, in a wave, cost a statement or two
  // for all of them.
  auto looks = std::make_shared<ReadBatcher<PollLook, Open>>(
      api.store, Store::ReadFor::kAgent,
      [&store = api.store](soci::session& sql, StatementCache& statements,
                           std::span<const PollLook> polls) {
        std::vector<Result<Open>> answers(polls.size());
        std::vector<std::string> hosts, asking;
        for (std::size_t i = 0; i < polls.size(); ++i) {
          // Woken while waiting: the host may have been removed or revoked
          // since its credential was checked.
          if (polls[i].woken) {
            if (auto ok = CheckHostEnrolled(sql, polls[i].host); !ok) {
              answers[i] = std::unexpected(ok.error());
              continue;
            }
          }
          hosts.push_back(polls[i].host);
          // Only to an agent that says it answers them: another would be
          // sent the question again on every poll.
          if (polls[i].asks_preflight) asking.push_back(polls[i].host);
        }
        auto deployments = OpenAssignments(sql, statements, hosts);
        auto questions = OpenPreflights(sql, statements, asking, store.clock().Seconds());
        for (std::size_t i = 0, host = 0, question = 0; i < polls.size(); ++i) {
          if (!answers[i]) continue;
          answers[i]->deployment = std::move(deployments[host++]);
          if (polls[i].asks_preflight) answers[i]->preflight = std::move(questions[question++]);
        }
        return answers;
      });

  router.Add(Method::kPost, std::string(protocol::kEnrollPath), RouteOptions::Public(),
             [api](RequestContext& ctx) -> Result<Response> {
               auto enrolled = [&]() -> Result<protocol::EnrollResponse> {
                 auto body = ctx.Json();
                 if (!body) return std::unexpected(body.error());
                 auto request = protocol::EnrollRequestFromJson(*body);
                 if (!request) return std::unexpected(request.error());
                 return EnrollHost(api.store, ctx.Origin(), *request, Now(api),
                                   &api.enroll_refusals, api.agent_certificates);
               }();
               if (api.metrics != nullptr) api.metrics->CountEnrollment(enrolled.has_value());
               if (!enrolled) return std::unexpected(enrolled.error());
               return Response::Created(protocol::EnrollResponseToJson(*enrolled));
             });

  auto idle = std::make_shared<IdleHosts>(kTrustIdleFor);
  router.Add(
      Method::kGet, std::string(protocol::kAssignmentPath), RouteOptions::Agent(),
      [api, looks, idle](RequestContext& ctx) -> Result<Response> {
        auto wait = PollWait(ctx);
        if (!wait) return std::unexpected(wait.error());
        const std::string key = WakeupHub::HostKey(ctx.host());
        // Read before looking at the store: a Notify after this point wakes us.
        const std::uint64_t generation = api.wakeups.Generation(key);
        // Written with the others' within a second (hosts/seen_marks.hpp): a
        // poll never waits for a write.
        if (!ctx.wait_until && api.seen_marks != nullptr)
          api.seen_marks->Note(ctx.host(), Now(api));
        const json none = protocol::AssignmentResponseToJson(std::nullopt);
        const bool asks_preflight = ctx.Query("preflight").value_or("") == "1";
        const auto now = std::chrono::steady_clock::now();
        if (*wait > 0 && !ctx.wait_until &&
            idle->StillIdle(ctx.host(), generation, asks_preflight, now)) {
          return Response::Wait(key, generation, now + PollHold(*wait), none);
        }
        auto open = looks->Read(PollLook{ctx.host(), ctx.wait_until.has_value(), asks_preflight});
        if (!open) return std::unexpected(open.error());
        idle->Looked(ctx.host(), generation, asks_preflight, !open->deployment && !open->preflight,
                     now);
        if (open->deployment || open->preflight) {
          std::optional<protocol::Assignment> assignment;
          if (open->deployment) assignment = open->deployment->ToAssignment();
          return Response::Ok(protocol::AssignmentResponseToJson(assignment, open->preflight));
        }
        if (*wait == 0) return Response::Ok(none);
        // A woken poll looks again within its first hold.
        const auto until = ctx.wait_until.value_or(now + PollHold(*wait));
        return Response::Wait(key, generation, until, none);
      });

  // A host's answer to a pre-flight question (deploy/preflight.hpp).
  router.Add(Method::kPost, std::string(protocol::kPreflightPath), RouteOptions::Agent(),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               auto answer = protocol::PreflightAnswerFromJson(*body);
               if (!answer) return std::unexpected(answer.error());
               auto recorded = api.store.Write(ctx.Origin(), [&](Transaction& tx) {
                 return RecordPreflightAnswer(tx, ctx.host(), *answer, tx.clock().Seconds());
               });
               if (!recorded) return std::unexpected(recorded.error());
               return Response::Ok(json::object());
             });

  // Inline (a small batch is parsed on the I/O thread) and written in a
  // batch: a POST holds no worker thread while its write waits and commits,
  // and one write holds every POST that came during the commits before it.
  router.Add(Method::kPost, std::string(protocol::kEventsPath), RouteOptions::Agent().Inline(),
             [events](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               auto batch = protocol::EventBatchFromJson(*body);
               if (!batch) return std::unexpected(batch.error());
               auto answer = std::make_shared<Deferred>();
               events->Submit(EventPost{ctx.host(), std::move(*batch), ctx.Origin()},
                              [answer](Result<protocol::EventAck> ack) {
                                if (!ack) {
                                  answer->Complete(std::unexpected(std::move(ack.error())));
                                  return;
                                }
                                answer->Complete(Response::Ok(protocol::EventAckToJson(*ack)));
                              });
               return Response::Later(answer);
             });

  // Renewal of the host's client certificate. The server has checked the
  // certificate on record (if any) and the credential already
  // (hosts/agent_certificates.hpp); a host without one on record (enrolled
  // before certificates, or without a CSR) gets its first one here.
  router.Add(Method::kPost, std::string(protocol::kAgentCertificatePath), RouteOptions::Agent(),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               auto request = protocol::CertificateRequestFromJson(*body);
               if (!request) return std::unexpected(request.error());
               if (api.agent_certificates == nullptr || !api.agent_certificates->sign) {
                 return Fail(ErrorCode::kFailedPrecondition,
                             "this coordinator does not issue client certificates");
               }
               auto issued = api.agent_certificates->sign(request->csr, ctx.host());
               if (!issued) return std::unexpected(issued.error());
               auto stored = api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<void> {
                 if (auto ok = CheckHostEnrolled(tx.sql(), ctx.host()); !ok) return ok;
                 RecordHostCertificate(tx, ctx.host(), issued->serial, issued->not_after,
                                       issued->pem, ctx.agent_certificate_serial);
                 return {};
               });
               if (!stored) return std::unexpected(stored.error());
               // The cached identities hold the old serial as the current one.
               api.agent_credentials.ForgetAll();
               return Response::Ok(protocol::CertificateResponseToJson(
                   {issued->pem, issued->serial, protocol::FormatRfc3339Utc(issued->not_after)}));
             });

  router.Add(Method::kPost, std::string(protocol::kInventoryPath), RouteOptions::Agent(),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               auto inventory = protocol::InventoryFromJson(*body);
               if (!inventory) return std::unexpected(inventory.error());
               auto stored = api.store.Write(ctx.Origin(), [&](Transaction& tx) {
                 return StoreInventory(tx, ctx.host(), *inventory, Now(api));
               });
               if (!stored) return std::unexpected(stored.error());
               return Response::Ok(json::object());
             });

  router.Add(
      Method::kGet, std::string(protocol::kAgentPackagesPath) + "{id}", RouteOptions::Agent(),
      [api](RequestContext& ctx) -> Result<Response> {
        const std::string id = ctx.path_params.at("id");
        if (!IsPackageId(id)) {
          return Fail(ErrorCode::kInvalidArgument,
                      fmt::format("\"{}\" is not a package id (64 lower-case hex digits)", id));
        }
        auto assigned = api.store.Read(
            [&](soci::session& sql) -> Result<bool> { return HostHasPackage(sql, ctx.host(), id); },
            Store::ReadFor::kAgent);
        if (!assigned) return std::unexpected(assigned.error());
        if (!*assigned) {
          return Fail(ErrorCode::kPermissionDenied,
                      fmt::format("package {} was not assigned to host {}", id, ctx.host()));
        }
        // Uploaded to another coordinator: fetched from the store once.
        auto file = LocalPackageFile(api.store, api.data, id);
        if (!file) return std::unexpected(file.error());
        return Response::File({*file, "application/octet-stream", fmt::format("\"{}\"", id)});
      });
}

}  // namespace fabu::coordinator
