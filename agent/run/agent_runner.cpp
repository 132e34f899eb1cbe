#include "agent/run/agent_runner.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>

#include "agent/common/clock.hpp"
#include "agent/common/log.hpp"
#include "agent/common/utf8.hpp"
#include "agent/config/agent_config.hpp"
#include "agent/deploy/deployer.hpp"
#include "agent/deploy/names.hpp"
#include "agent/hooks/hook_runner.hpp"
#include "agent/host/host_inventory.hpp"
#include "agent/journal/journal.hpp"
#include "agent/net/agent_api_client.hpp"
#include "agent/net/backoff.hpp"
#include "agent/net/client_identity.hpp"
#include "agent/net/package_download.hpp"
#include "agent/run/preflight.hpp"
#include "agent/run/resident_pages.hpp"
#include "agent/run/service_notify.hpp"
#include "agent/run/stop_signal.hpp"
#include "platform/fs/files.hpp"
#include "protocol/build_info.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;
using protocol::Assignment;

namespace {

constexpr std::size_t kBatchLimit = 100;

// Creates an empty file at `path` unless one is there (mode 0600).
bool CreateIfAbsent(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// Sends WATCHDOG=1 at most every half interval; a no-op without WATCHDOG_USEC.
class Watchdog {
 public:
  Watchdog() {
    if (auto usec = ServiceWatchdogInterval()) interval_ = *usec / 2;
  }
  bool enabled() const { return interval_.count() > 0; }
  std::chrono::microseconds interval() const { return interval_; }
  void Ping() {
    if (!enabled()) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < interval_) return;
    last_ = now;
    NotifyServiceManager("WATCHDOG=1");
  }

 private:
  std::chrono::microseconds interval_{0};
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

struct AgentRunner::State {
  // Posts the journal's pending events as they are published.
  class CoordinatorSink final : public EventSink {
   public:
    explicit CoordinatorSink(State& state) : state_(state) {}
    void Publish(const DeploymentEvent& event) override {
      log::Info("deployment {} #{}: {}{}", event.deployment, event.sequence, StepName(event.step),
                event.message.empty() ? "" : ": " + event.message);
      // While the coordinator is away, the main loop retries; do not make
      // every step of a deployment wait for a connect timeout.
      if (state_.link == Link::kUnreachable) return;
      if (auto ok = state_.FlushEvents(); !ok) state_.Unreachable(ok.error());
    }

   private:
    State& state_;
  };

  enum class Link { kUnknown, kReachable, kUnreachable };

  State(fs::path data_dir_in, AgentConfig config_in, Journal journal_in, AgentApiClient api_in,
        const StopSignal& stop_in)
      : data_dir(std::move(data_dir_in)),
        config(std::move(config_in)),
        journal(std::move(journal_in)),
        api(std::move(api_in)),
        stop(stop_in),
        sink(*this),
        backoff(std::chrono::seconds(config.backoff_initial_seconds),
                std::chrono::seconds(config.backoff_cap_seconds), Backoff::SystemRandom()) {}

  fs::path data_dir;
  AgentConfig config;
  Journal journal;
  AgentApiClient api;
  const StopSignal& stop;
  CoordinatorSink sink;
  SystemClock clock;
  ProcessHookRunner hooks;
  std::unique_ptr<Deployer> deployer;
  Backoff backoff;
  Watchdog watchdog;
  Link link = Link::kUnknown;
  // Moves to another coordinator since the last answer (MoveIfAway).
  std::size_t moves = 0;
  bool inventory_pending = true;
  // The deployment of the assignment last polled; unknown until the first poll.
  bool polled = false;
  std::optional<std::string> assignment;
  // The last deployment id refused as unusable (logged once).
  std::string refused_id;
  // The client certificate (client_identity.hpp), none for a host enrolled
  // without one; what the HTTP client is made with, again after a renewal.
  std::optional<ClientCertificateInfo> certificate;
  platform::HttpClientOptions http_settings;
  // A renewal the coordinator refused (not a 401) is tried again from then.
  protocol::UnixSeconds renew_not_before = 0;

  // The publisher keys, as the deployer has them: what a pre-flight answers
  // about the key a package was signed with.
  packaging::TrustStore preflight_trust;

  // The package id whose downloads were last kept by PruneDownloads ("" for
  // none); unset until the first poll answered.
  std::optional<std::string> downloads_kept_for;

  fs::path Downloads() const { return data_dir / "downloads"; }

  // Removes every file in DIR/downloads that is not the package of the
  // current assignment (`keep_id`, "" when there is none): partial downloads
  // of cancelled or superseded assignments would otherwise stay forever. The
  // current one's <id>.part stays, so a Range resume still works.
  void PruneDownloads(const std::string& keep_id) {
    std::error_code ec;
    fs::directory_iterator it(Downloads(), ec);
    if (ec) return;  // no downloads yet
    for (const auto& entry : it) {
      const fs::path& path = entry.path();
      if (!keep_id.empty() && path.stem().string() == keep_id) continue;
      std::error_code removed;
      fs::remove_all(path, removed);
      if (removed) {
        log::Warn("cannot remove stale download {}: {}", path.string(), removed.message());
      } else {
        log::Info("removed stale download {} (not the current assignment's package)",
                  path.filename().string());
      }
    }
  }

  void Reachable() {
    if (link == Link::kUnreachable) log::Info("coordinator {} reachable again", api.server());
    link = Link::kReachable;
    moves = 0;
    backoff.Reset();
  }

  // After a failed exchange with the coordinator (`from_server`; false for
  // a package mirror's): when it is away and there are others, the next
  // one is asked from now on (AgentApiClient::NoteFailure). Each move is
  // logged until every coordinator has been tried in this outage; then
  // once that none answers. True when it moved.
  bool MoveIfAway(const Error& error, bool from_server = true) {
    const std::string from = api.server();
    if (!api.NoteFailure(error, from_server)) return false;
    const std::size_t count = api.servers().size();
    if (moves < count) {
      log::Warn("coordinator {} unreachable ({}); moving to {}", from, error.message(),
                api.server());
    }
    if (++moves == count) {
      log::Warn("none of the {} coordinators answers (retrying each in turn, backoff up to {}s)",
                count, config.backoff_cap_seconds);
    }
    return true;
  }

  void Unreachable(const Error& error, bool from_server = true) {
    const bool moved = MoveIfAway(error, from_server);
    if (link != Link::kUnreachable && !moved) {
      log::Warn("coordinator {} unreachable: {} (retrying, backoff up to {}s)", api.server(),
                error.message(), config.backoff_cap_seconds);
    }
    link = Link::kUnreachable;
  }

  // Waits out the next backoff delay; true when asked to stop meanwhile.
  bool WaitBackoff() {
    // An overloaded coordinator says when to come back (503 + Retry-After).
    const auto delay = backoff.Next(api.retry_after());
    const auto deadline = std::chrono::steady_clock::now() + delay;
    // Wake for the watchdog while waiting.
    const auto step =
        watchdog.enabled()
            ? std::chrono::duration_cast<std::chrono::milliseconds>(watchdog.interval())
            : delay;
    while (!stop.requested()) {
      watchdog.Ping();
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      stop.WaitFor(std::min(left, std::max(step, std::chrono::milliseconds(1))));
    }
    return stop.requested();
  }

  static bool IsFatal(const Error& error) { return error.code() == ErrorCode::kUnauthenticated; }

  // Renews the client certificate once less than a third of its lifetime
  // remains: a new key (client.key.next) and its CSR, sent with the current
  // certificate and the credential; the answer replaces client.pem in one
  // rename, and only then is the old key gone. Until then the old pair
  // stays in use, so a failed or lost renewal is tried again on the next
  // round and the agent never goes without a valid pair. A 401 is fatal as
  // for any request; an unreachable coordinator is an error to back off from.
  Result<void> MaybeRenew() {
    if (!certificate) return {};
    const protocol::UnixSeconds now = clock.Now();
    if (!certificate->RenewalDue(now) || now < renew_not_before) return {};
    auto csr = PendingCertificateRequest(data_dir, config.name);
    if (!csr) return std::unexpected(csr.error());
    auto answer = api.RenewCertificate(*csr);
    if (!answer) {
      if (IsFatal(answer.error()) || answer.error().code() == ErrorCode::kUnavailable) {
        return std::unexpected(answer.error());
      }
      log::Warn(
          "renewing the client certificate (serial {}, expires {}): {}; trying again in "
          "{}s",
          certificate->serial, protocol::FormatRfc3339Utc(certificate->not_after),
          answer.error().message(), config.backoff_cap_seconds);
      renew_not_before = now + config.backoff_cap_seconds;
      return {};
    }
    if (auto ok = StoreClientIdentity(data_dir, answer->certificate); !ok) return ok;
    auto stored = ReadClientIdentity(data_dir);
    if (!stored) return std::unexpected(stored.error());
    log::Info("client certificate renewed: serial {} (was {}), expires {}", answer->serial,
              certificate->serial, answer->not_after);
    certificate = *stored;
    // A new client, so that no connection made with the old certificate is
    // used again, nor a TLS session of one (a resumed session keeps the
    // certificate of the handshake it resumes).
    auto http = platform::HttpClient::Create(http_settings);
    if (!http) return std::unexpected(http.error());
    api.http() = std::move(*http);
    InstallTick();
    return {};
  }

  void InstallTick() {
    api.http().set_tick([this] {
      watchdog.Ping();
      return !stop.requested();
    });
  }

  // A final event of `deployment` still in the journal, or the journal's
  // last finished deployment.
  bool FinishedLocally(const std::string& deployment) const {
    if (journal.last() && journal.last()->deployment == deployment) return true;
    const bool in_flight = journal.in_flight() && journal.in_flight()->deployment == deployment;
    return std::ranges::any_of(journal.pending_events(), [&](const DeploymentEvent& e) {
      if (e.deployment != deployment) return false;
      return e.step == Step::kSucceeded || e.step == Step::kRolledBack ||
             e.step == Step::kRollbackFailed || (e.step == Step::kFailed && !in_flight);
    });
  }

  // How far the journal may drop `deployment`'s events when the coordinator
  // stored them through `through` (see the header on sequence numbers).
  std::uint64_t DroppableThrough(const std::string& deployment, std::uint64_t through) const {
    if (journal.in_flight() && journal.in_flight()->deployment == deployment) return through;
    if (FinishedLocally(deployment)) return through;
    const bool active = !polled || assignment == deployment;
    const std::uint64_t newest = journal.NextSequence(deployment) - 1;
    if (active && through >= newest && newest > 0) return newest - 1;
    return through;
  }

  Result<void> FlushEvents() {
    while (!journal.pending_events().empty()) {
      protocol::EventBatch batch;
      for (const auto& e : journal.pending_events()) {
        if (batch.events.size() == kBatchLimit) break;
        batch.events.push_back(e);
      }
      auto ack = api.PostEvents(batch);
      if (!ack) return std::unexpected(ack.error());
      const std::size_t before = journal.pending_events().size();
      for (const auto& [deployment, through] : ack->through) {
        if (auto ok = journal.Acknowledge(deployment, DroppableThrough(deployment, through)); !ok) {
          return std::unexpected(ok.error());
        }
      }
      // What is left was held back or not stored: send it next time round.
      if (journal.pending_events().size() == before || batch.events.size() < kBatchLimit) break;
    }
    return {};
  }

  Result<void> SendInventory() {
    auto inventory = CollectInventory(deployer->layout());
    if (!inventory) return std::unexpected(inventory.error());
    if (auto ok = api.PostInventory(*inventory); !ok) return ok;
    inventory_pending = false;
    // Start-up, a deployment or a recovery is over and the long poll comes
    // next: give back the heap they grew and the library pages only they
    // used (resident_pages.hpp), while the agent idles.
    ::malloc_trim(0);
    ReleaseCleanFileMappings();
    return {};
  }

  Result<void> Publish(const Assignment& a, Step step, std::string message = {},
                       std::optional<Step> failed_step = {}) {
    DeploymentEvent event;
    event.deployment = a.deployment;
    event.sequence = journal.NextSequence(a.deployment);
    event.step = step;
    event.failed_step = failed_step;
    event.app = a.app;
    event.version = a.version;
    event.message = ValidUtf8(message);  // may quote a coordinator's answer
    event.time = clock.Now();
    if (auto ok = journal.Append(event); !ok) return ok;
    sink.Publish(event);
    return {};
  }

  enum class Next { kContinue, kRetryLater };

  // Carries out one assignment. kRetryLater: the download could not go on
  // now (coordinator away, stopping); the next poll resumes it. An error is
  // fatal for the agent (journal, credential).
  Result<Next> Execute(const Assignment& a) {
    const platform::log::Scope scope(
        platform::log::Fields().Release(a.release).Deployment(a.deployment));
    log::Info("assignment {}: {} {} {} (release {})", a.deployment, DeploymentKindName(a.kind),
              a.app, a.version, a.release);
    // Names from the network are checked before any touches a path or a
    // command (names.hpp); the refusal is the deployment's final event.
    if (auto ok = CheckAssignment(a); !ok) {
      const std::string reason =
          fmt::format("assignment refused, nothing was done: {}", ok.error().message());
      log::Error("assignment {}: {}", a.deployment, reason);
      Assignment named = a;  // the event names only what passed
      if (!CheckAppName(a.app)) named.app.clear();
      if (!protocol::Version::Parse(a.version)) named.version.clear();
      if (auto published = Publish(named, Step::kFailed, reason, Step::kVerified); !published) {
        return std::unexpected(published.error());
      }
      return Next::kContinue;
    }
    if (journal.NextSequence(a.deployment) == 1) {
      if (auto ok = Publish(a, Step::kAssigned); !ok) return std::unexpected(ok.error());
    }
    DeploymentRequest request;
    request.deployment = a.deployment;
    request.kind = a.kind;
    request.package_sha256 = a.package_id;
    request.app = a.app;
    request.observe = std::chrono::seconds(a.observe_seconds);
    request.observe_interval = std::chrono::seconds(a.observe_interval_seconds);
    fs::path downloaded;
    std::unique_ptr<PreparedInstall> prepared;
    if (!a.package_id.empty()) {
      auto url = api.PackageUrl(a);
      DownloadRequest download;
      download.bearer = url && api.IsOnServer(*url) ? api.credential() : "";
      download.part = Downloads() / (a.package_id + ".part");
      download.destination = Downloads() / (a.package_id + ".fabu");
      download.size = a.package_size;
      std::error_code ec;
      const auto partial = fs::file_size(download.part, ec);
      std::string note =
          ec || partial == 0 ? std::string() : fmt::format("resuming at byte {}", partial);
      if (auto ok = Publish(a, Step::kDownloading, note); !ok) return std::unexpected(ok.error());
      // An install extracts while it downloads: a second thread follows the
      // part file and writes the release's tree beside it (Deploy still
      // checks everything before it activates; see PrepareInstall).
      if (url && a.kind == DeploymentKind::kInstall && !fs::exists(download.destination, ec) &&
          platform::MakeDirectories(Downloads()) && CreateIfAbsent(download.part)) {
        auto growing = std::make_shared<packaging::GrowingFile>();
        download.progress = growing.get();
        prepared = deployer->PrepareInstall(download.part, std::move(growing));
      }
      Result<DownloadReport> report = url ? ([&] {
        download.url = *url;
        return DownloadPackage(api.http(), download);
      })()
                                          : Result<DownloadReport>(std::unexpected(url.error()));
      if (!report) {
        const Error& e = report.error();
        if (stop.requested()) return Next::kRetryLater;
        if (IsFatal(e)) return std::unexpected(e);
        if (e.code() == ErrorCode::kUnavailable) {
          // A mirror that is away is no reason to leave the coordinator.
          const bool from_server =
              !url || url->starts_with(api.server() + "/") || *url == api.server();
          Unreachable(e, from_server);
          return Next::kRetryLater;
        }
        // Refused (403/404), oversized, or the disk: this deployment cannot go on.
        log::Error("assignment {}: download failed: {}", a.deployment, e.message());
        if (auto ok = Publish(a, Step::kFailed, e.message(), Step::kDownloading); !ok) {
          return std::unexpected(ok.error());
        }
        return Next::kContinue;
      }
      Reachable();
      log::Info("assignment {}: downloaded {} bytes ({} fetched, resumed from {})", a.deployment,
                a.package_size, report->fetched, report->resumed_from);
      if (auto ok = Publish(a, Step::kDownloaded); !ok) return std::unexpected(ok.error());
      downloaded = download.destination;
      request.package = downloaded;
      request.package_file_sha256 = report->sha256;
      request.package_is_scratch = true;
      request.prepared = prepared.get();
    }

    Result<DeploymentOutcome> outcome = [&] {
      // The engine blocks on hooks (each with its own timeout); keep systemd's
      // watchdog fed meanwhile.
      std::jthread keeper;
      if (watchdog.enabled()) {
        keeper = std::jthread([interval = watchdog.interval()](std::stop_token token) {
          std::mutex mutex;
          std::condition_variable_any cv;
          std::unique_lock lock(mutex);
          while (!token.stop_requested()) {
            NotifyServiceManager("WATCHDOG=1");
            cv.wait_for(lock, token, interval, [] { return false; });
          }
        });
      }
      return deployer->Deploy(request);
    }();
    if (!outcome) return std::unexpected(outcome.error());
    log::Info("deployment {}: {}{}", outcome->deployment, StepName(outcome->final_step),
              outcome->message.empty() ? "" : ": " + outcome->message);
    if (!downloaded.empty()) {
      std::error_code ec;
      fs::remove(downloaded, ec);
    }
    inventory_pending = true;
    return Next::kContinue;
  }

  // Answers a pre-flight question (run/preflight.hpp); false when the
  // answer was not delivered (the coordinator asks again at the next poll,
  // after a backoff).
  bool AnswerPreflightQuestion(const protocol::PreflightRequest& question) {
    PreflightContext context;
    context.apps_root = config.apps_root;
    context.downloads = Downloads();
    context.trust = &preflight_trust;
    context.host = HostFacts::Detect();
    if (journal.in_flight()) context.in_flight = journal.in_flight()->deployment;
    const protocol::PreflightAnswer answer = AnswerPreflight(question, context);
    log::Info("pre-flight {} ({} {}): {}", question.id, question.app, question.version,
              answer.ready ? std::string("ready")
                           : fmt::format("would fail: {}", fmt::join(answer.reasons, "; ")));
    if (auto ok = api.PostPreflight(answer); !ok) {
      log::Warn("pre-flight {}: the answer was not delivered: {}", question.id,
                ok.error().message());
      MoveIfAway(ok.error());
      return false;
    }
    return true;
  }

  Result<void> Loop() {
    while (!stop.requested()) {
      watchdog.Ping();
      if (!journal.pending_events().empty()) {
        if (auto ok = FlushEvents(); !ok) {
          if (IsFatal(ok.error())) return ok;
          Unreachable(ok.error());
          if (WaitBackoff()) break;
          continue;
        }
        Reachable();
      }
      if (inventory_pending) {
        if (auto ok = SendInventory(); !ok) {
          if (IsFatal(ok.error())) return ok;
          Unreachable(ok.error());
          if (WaitBackoff()) break;
          continue;
        }
        Reachable();
      }
      if (auto ok = MaybeRenew(); !ok) {
        if (IsFatal(ok.error())) return ok;
        if (ok.error().code() != ErrorCode::kUnavailable) return ok;
        Unreachable(ok.error());
        if (WaitBackoff()) break;
        continue;
      }
      // Idle now: what the coordinator acknowledged goes to disk while it waits.
      if (auto ok = journal.WriteAcknowledged(); !ok) return ok;
      auto polled_assignment = api.PollAssignment(std::chrono::seconds(config.poll_wait_seconds));
      if (stop.requested()) break;
      if (!polled_assignment) {
        if (IsFatal(polled_assignment.error())) return std::unexpected(polled_assignment.error());
        Unreachable(polled_assignment.error());
        if (WaitBackoff()) break;
        continue;
      }
      Reachable();
      polled = true;
      if (auto question = api.TakePreflight();
          question && !AnswerPreflightQuestion(*question) && !*polled_assignment) {
        if (WaitBackoff()) break;
        continue;
      }
      // On start (the first answer) and whenever the assignment changes.
      const std::string current_package =
          *polled_assignment ? (*polled_assignment)->package_id : std::string();
      if (downloads_kept_for != current_package) {
        PruneDownloads(current_package);
        downloads_kept_for = current_package;
      }
      if (!*polled_assignment) {
        assignment.reset();
        continue;
      }
      const Assignment& a = **polled_assignment;
      assignment = a.deployment;
      if (auto ok = CheckDeploymentId(a.deployment); !ok) {
        // No event can answer a deployment that has no usable name: say it
        // in the log (once per assignment) and ask again later.
        if (refused_id != a.deployment) {
          log::Error("refusing an assignment: {}; nothing was done", ok.error().message());
          refused_id = a.deployment;
        }
        if (WaitBackoff()) break;
        continue;
      }
      if (FinishedLocally(a.deployment)) {
        // Ended here already; the coordinator has not stored the final event
        // yet. Send the events again (next round) rather than run it twice;
        // wait so a coordinator that keeps repeating it is not hammered.
        log::Debug("assignment {} already ended here; re-sending its events", a.deployment);
        if (journal.pending_events().empty() && WaitBackoff()) break;
        continue;
      }
      auto next = Execute(a);
      if (!next) return std::unexpected(next.error());
      if (*next == Next::kRetryLater && WaitBackoff()) break;
    }
    log::Info("stopping");
    return {};
  }
};

AgentRunner::AgentRunner(std::unique_ptr<State> state) : state_(std::move(state)) {}
AgentRunner::~AgentRunner() = default;

Result<std::unique_ptr<AgentRunner>> AgentRunner::Create(const fs::path& data_dir,
                                                         const StopSignal& stop) {
  auto config = ReadAgentConfig(data_dir);
  if (!config) return std::unexpected(config.error());
  auto credential = ReadCredential(ResolvePath(data_dir, config->credential));
  if (!credential) return std::unexpected(credential.error());
  const fs::path ca = ResolvePath(data_dir, config->ca);
  std::error_code ec;
  if (!fs::is_regular_file(ca, ec)) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("the coordinator's CA {} is missing (agent.json: ca)", ca.string()));
  }
  packaging::TrustStore trust, preflight_trust;
  for (const auto& key : config->trusted_keys) {
    const fs::path path = ResolvePath(data_dir, key);
    if (auto ok = preflight_trust.AddFile(path); !ok) {
      return std::unexpected(
          ok.error().WithContext(fmt::format("agent.json: trusted key {}", path.string())));
    }
    if (auto ok = trust.AddFile(path); !ok) {
      return std::unexpected(
          ok.error().WithContext(fmt::format("agent.json: trusted key {}", path.string())));
    }
  }
  if (trust.empty()) {
    const platform::log::Scope scope(platform::log::Fields().Host(config->name));
    log::Warn("agent.json: trusted_keys is empty: every package will be refused at verify");
  }
  platform::HttpClientOptions settings;  // never a proxy, CA pinned
  settings.ca_file = ca.string();
  settings.connect_timeout = std::chrono::seconds(config->connect_timeout_seconds);
  settings.low_speed_limit_bytes = config->low_speed_limit_bytes;
  settings.low_speed_time = std::chrono::seconds(config->low_speed_time_seconds);
  // The client certificate, when the host has one, to the coordinator only
  // (never to a package mirror).
  auto certificate = ReadClientIdentity(data_dir);
  if (!certificate) return std::unexpected(certificate.error());
  if (*certificate) {
    const std::string identity = (data_dir / kClientIdentityFile).string();
    settings.client_cert_file = identity;
    settings.client_key_file = identity;
    for (std::string origin : config->servers) {
      while (!origin.empty() && origin.back() == '/') origin.pop_back();
      settings.client_cert_origins.push_back(origin + "/");
    }
  }
  auto http = platform::HttpClient::Create(settings);
  if (!http) return std::unexpected(http.error());
  if (auto ok = platform::MakeDirectories(config->apps_root); !ok)
    return std::unexpected(ok.error());
  auto journal = Journal::Open(data_dir);
  if (!journal) return std::unexpected(journal.error());

  AgentApiClient api(std::move(*http), config->servers, *credential);
  auto state =
      std::make_unique<State>(data_dir, *config, std::move(*journal), std::move(api), stop);
  State* s = state.get();
  s->certificate = *certificate;
  s->preflight_trust = std::move(preflight_trust);
  s->http_settings = settings;
  s->InstallTick();
  DeploymentSettings deployment;
  deployment.apps_root = config->apps_root;
  deployment.retained_releases = static_cast<std::size_t>(config->retained_releases);
  deployment.hook_timeout = std::chrono::seconds(config->hook_timeout_seconds);
  deployment.health_check_timeout = std::chrono::seconds(config->health_check_timeout_seconds);
  deployment.health_check_attempts = config->health_check_attempts;
  deployment.health_check_delay = std::chrono::seconds(config->health_check_delay_seconds);
  s->deployer =
      std::make_unique<Deployer>(std::move(deployment), std::move(trust), HostFacts::Detect(),
                                 s->journal, s->sink, s->hooks, s->clock);
  return std::unique_ptr<AgentRunner>(new AgentRunner(std::move(state)));
}

Result<void> AgentRunner::Run() {
  State& s = *state_;
  const platform::log::Scope scope(platform::log::Fields().Host(s.config.name));
  log::Info("fabu-agent {} as {} for {} (apps in {})", BuildVersion(), s.config.name,
            fmt::join(s.config.servers, ", "), s.config.apps_root);
  auto recovered = s.deployer->Recover();
  if (!recovered) return std::unexpected(recovered.error());
  if (*recovered) {
    log::Info("recovered deployment {}: {}", (*recovered)->deployment,
              StepName((*recovered)->final_step));
  }
  NotifyServiceManager("READY=1");
  auto result = s.Loop();
  NotifyServiceManager("STOPPING=1");
  if (auto ok = s.journal.WriteAcknowledged(); !ok && result) result = ok;
  return result;
}

}  // namespace fabu::agent
