// clang-format off
#include <utility>  // before any Boost.Asio header: asio/awaitable.hpp needs it with g++ 12
// clang-format on

#include "coordinator/daemon/daemon.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>

#include "coordinator/api/api_context.hpp"
#include "coordinator/auth/users.hpp"
#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/cmdb/delivery.hpp"
#include "coordinator/cmdb/outbox_signal.hpp"
#include "coordinator/common/data_dir.hpp"
#include "coordinator/common/digest.hpp"
#include "coordinator/common/secret_box.hpp"
#include "coordinator/config/config.hpp"
#include "coordinator/daemon/audit_anchor.hpp"
#include "coordinator/daemon/check_runner.hpp"
#include "coordinator/daemon/listeners.hpp"
#include "coordinator/daemon/periodic.hpp"
#include "coordinator/daemon/store_target.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/notify/notice_connector.hpp"
#include "coordinator/notify/notices.hpp"
#include "coordinator/packages/package_store.hpp"
#include "coordinator/release/release_plan.hpp"
#include "coordinator/server/http_server.hpp"
#include "coordinator/store/lease.hpp"
#include "coordinator/store/peer_signals.hpp"
#include "coordinator/store/store.hpp"
#include "coordinator/tls/certificates.hpp"
#include "coordinator/tls/client_certificates.hpp"
#include "platform/fs/files.hpp"

namespace fabu::coordinator {
namespace {

// How often host timeouts are checked: a host times out at most this late.
constexpr std::chrono::milliseconds kSweepInterval{1000};
// How often the audit chain's head is checkpointed when it moved
// (docs/security.md).
constexpr std::chrono::milliseconds kCheckpointInterval{60'000};
// How often the running daemon checks the audit entries written since its
// last check (AuditWatch).
constexpr std::chrono::milliseconds kAuditCheckInterval{60'000};
// How often the retention rules run (retention.hpp); the first run is one
// interval after the start.
constexpr std::chrono::milliseconds kGcInterval = std::chrono::hours(24);

// What the coordinators tell each other besides the WakeupHub's keys
// (which name a host, a release or the sweep: never these).
constexpr std::string_view kCredentialsSignal = "credentials";
constexpr std::string_view kUserTokensSignal = "user-tokens";
constexpr std::string_view kOutboxSignal = "outbox";

AuditOrigin LocalOrigin(std::string_view command) {
  auto id = RandomHex(8);
  return {"fabu-coordinator", "system", fmt::format("{}-{}", command, id ? *id : "0"), "local"};
}

// Removes what a failed init made, so the next attempt starts clean.
class InitRollback {
 public:
  InitRollback(DataDir data, bool created_root)
      : data_(std::move(data)), created_root_(created_root) {}
  ~InitRollback() {
    if (committed_) return;
    std::error_code ec;
    if (created_root_) {
      std::filesystem::remove_all(data_.root, ec);
      return;
    }
    for (const auto& path :
         {data_.config(), data_.ca_cert(), data_.ca_key(), data_.server_cert(), data_.server_key(),
          data_.secret_key(), data_.store(), std::filesystem::path(data_.store().string() + "-wal"),
          std::filesystem::path(data_.store().string() + "-shm")}) {
      std::filesystem::remove(path, ec);
    }
    for (const auto& dir : {data_.trusted(), data_.packages(), data_.tmp()}) {
      std::filesystem::remove(dir, ec);  // only when still empty
    }
  }
  void Commit() { committed_ = true; }

 private:
  DataDir data_;
  bool created_root_;
  bool committed_ = false;
};

// kAlreadyExists when `data` already holds (part of) a coordinator: init
// and join never touch one.
Result<void> RefuseExistingCoordinator(const DataDir& data) {
  std::error_code ec;
  for (const auto& path :
       {data.store(), data.config(), data.ca_key(), data.server_key(), data.secret_key()}) {
    if (std::filesystem::exists(path, ec)) {
      return Fail(ErrorCode::kAlreadyExists,
                  fmt::format("{} already holds a coordinator ({} exists); refusing to touch it",
                              data.root.string(), path.filename().string()));
    }
  }
  return {};
}

// Makes the data directory `data` (the coordinator's alone: 0700, also
// when it existed empty before) and its subdirectories; the rollback it
// returns removes them again unless committed.
Result<std::unique_ptr<InitRollback>> MakeDataDir(const DataDir& data) {
  std::error_code ec;
  const bool created_root = !std::filesystem::exists(data.root, ec);
  std::filesystem::create_directories(data.root, ec);
  if (ec)
    return Fail(ErrorCode::kIo, fmt::format("creating {}: {}", data.root.string(), ec.message()));
  auto rollback = std::make_unique<InitRollback>(data, created_root);
  std::filesystem::permissions(data.root, std::filesystem::perms::owner_all, ec);
  if (ec)
    return Fail(ErrorCode::kIo, fmt::format("chmod {}: {}", data.root.string(), ec.message()));
  for (const auto& dir : {data.trusted(), data.packages(), data.tmp()}) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Fail(ErrorCode::kIo, fmt::format("creating {}: {}", dir.string(), ec.message()));
  }
  return rollback;
}

// Drops the group and other permissions of `path` (not following a
// symlink); true when it had any.
bool MakePrivate(const std::filesystem::path& path, bool log) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return false;
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) return false;
  const mode_t mode = st.st_mode & 07777;
  if ((mode & 077) == 0) return false;
  const mode_t tightened = mode & 07700;
  if (::chmod(path.c_str(), tightened) != 0) {
    spdlog::warn("{}: mode {:04o} is open to others and cannot be tightened: {}", path.string(),
                 mode, std::strerror(errno));
    return false;
  }
  if (log) {
    spdlog::warn("{}: mode {:04o} was open to others; tightened to {:04o}", path.string(), mode,
                 tightened);
  }
  return true;
}

// The data directory is the coordinator's alone (docs/coordinator.md, "Files
// and modes"): a directory or file left open to others by an older
// coordinator or by hand is tightened at start, each with a log line (the
// files of packages/ and trusted/ counted in one).
void TightenDataDir(const DataDir& data) {
  MakePrivate(data.root, true);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(data.root, ec)) {
    MakePrivate(entry.path(), true);
  }
  for (const auto& dir : {data.trusted(), data.packages(), data.tmp()}) {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (MakePrivate(entry.path(), false)) ++count;
    }
    if (count > 0) {
      spdlog::warn("{}: {} file(s) open to others; tightened to owner only", dir.string(), count);
    }
  }
}

// The key that seals secrets in the store. Made when missing, unless the
// store already holds secrets sealed by a key that is gone: those could not
// be opened again, and a new key would hide that.
Result<SecretBox> LoadSecretKey(const DataDir& data, Store& store) {
  auto box = SecretBox::Load(data.secret_key());
  if (box || box.error().code() != ErrorCode::kNotFound) return box;
  auto sealed = store.Read(
      [](soci::session& sql) -> Result<bool> { return AnySealedSubscriptionSecret(sql); });
  if (!sealed) return std::unexpected(sealed.error());
  if (*sealed) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("{} is missing, but the store holds secrets sealed with it: restore "
                            "it from the backup of the data directory",
                            data.secret_key().string()));
  }
  spdlog::info("made {}, the key that seals webhook secrets in the store",
               data.secret_key().string());
  return SecretBox::Create(data.secret_key());
}

}  // namespace

Result<std::string> InitDataDir(const InitOptions& options) {
  const DataDir data{options.data};
  if (auto free = RefuseExistingCoordinator(data); !free) return std::unexpected(free.error());
  CoordinatorConfig config;
  if (options.listen) {
    auto address = ParseListenAddress(*options.listen);
    if (!address) return std::unexpected(address.error().WithContext("--listen"));
    // The agents enrolled against this port keep it: a port chosen anew at
    // every start would strand them after the first restart.
    if (address->port == 0) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("--listen {}: port 0 would choose another port at every start, "
                              "and the agents enrolled against the first one could no longer "
                              "reach it; give a fixed port (`serve --listen HOST:0` picks one "
                              "for a single run)",
                              *options.listen));
    }
    config.listen = *options.listen;
  }
  config.hostnames = options.hostnames;
  config.store = options.store;
  if (options.agent_certificates != "required" && options.agent_certificates != "optional") {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("--agent-certificates: \"required\" or \"optional\", not \"{}\"",
                            options.agent_certificates));
  }
  config.agent_certificates = options.agent_certificates;
  if (auto checked = StoreConfig::FromJson(config.store.ToJson(), "store"); !checked) {
    return std::unexpected(checked.error());
  }
  auto target = StoreTargetOf(data, config.store);
  if (!target) return std::unexpected(target.error());

  auto made = MakeDataDir(data);
  if (!made) return std::unexpected(made.error());
  InitRollback& rollback = **made;
  if (auto ok = platform::WriteFileDurably(data.config(), config.ToJson().dump(2) + "\n", 0600);
      !ok) {
    return std::unexpected(ok.error());
  }
  if (auto box = SecretBox::Create(data.secret_key()); !box) return std::unexpected(box.error());
  if (auto ok = CreateCertificates(data, config.hostnames); !ok) {
    return std::unexpected(ok.error().WithContext("making the CA and server certificate"));
  }
  auto store = Store::Create(*target);
  if (!store) return std::unexpected(store.error());
  const AuditOrigin origin = LocalOrigin("init");
  auto token = (*store)->Write(origin, [&](Transaction& tx) -> Result<std::string> {
    AuditEvent event("coordinator.init", "coordinator", data.root.filename().string());
    event.after = config.ToJson();
    tx.Audit(event);
    return CreateUser(tx, "admin", Role::kAdmin, config.user_token_days);
  });
  if (!token) return std::unexpected(token.error());
  (*store)->Close();
  if (auto ok = platform::SyncDirectory(data.root); !ok) return std::unexpected(ok.error());
  rollback.Commit();
  return *token;
}

namespace {

// A file config.json names for connectors and mail, with where it is named.
// Secrets and passwords given by a relative path are the data directory's
// (as the coordinator reads them); a CA file is read as given.
struct NamedFile {
  std::string where;
  std::string name;
  bool in_data_dir;  // a relative `name` is under the data directory
};
std::vector<NamedFile> FilesNamedBy(const CoordinatorConfig& config) {
  std::vector<NamedFile> out;
  auto add = [&](std::string where, const std::string& name, bool in_data_dir) {
    if (!name.empty()) out.push_back({std::move(where), name, in_data_dir});
  };
  for (const ConnectorConfig& c : config.cmdb.connectors) {
    const std::string where = fmt::format("cmdb connector {}", c.name);
    add(where + " secret_file", c.secret_file, true);
    add(where + " password_file", c.password_file, true);
    add(where + " ca_file", c.ca_file, false);
  }
  add("smtp password_file", config.smtp.password_file, true);
  add("smtp ca_file", config.smtp.ca_file, false);
  return out;
}

// A joining coordinator needs every file its copied config.json names: one
// under the data directory is copied from the other coordinator's; one by
// an absolute path must already be on this host (copying /etc is for a
// person).
Result<void> CopyFilesNamedByConfig(const CoordinatorConfig& config, const DataDir& from,
                                    const DataDir& data) {
  std::error_code ec;
  for (const NamedFile& file : FilesNamedBy(config)) {
    const std::filesystem::path path(file.name);
    if (path.is_absolute()) {
      if (!std::filesystem::is_regular_file(path, ec)) {
        return Fail(ErrorCode::kNotFound,
                    fmt::format("config.json's {} is {}, which is not on this host: copy it here "
                                "from the other coordinator's host, then join again",
                                file.where, file.name));
      }
      continue;
    }
    if (!file.in_data_dir) continue;  // relative to where the coordinator runs
    auto content = platform::ReadWholeFile(from.root / path);
    if (!content) {
      return std::unexpected(
          content.error().WithContext(fmt::format("--from: config.json's {}", file.where)));
    }
    std::filesystem::create_directories((data.root / path).parent_path(), ec);
    if (auto ok = platform::WriteFileDurably(data.root / path, *content, 0600); !ok) {
      return std::unexpected(ok.error());
    }
  }
  return {};
}

}  // namespace

Result<void> JoinInstallation(const JoinOptions& options) {
  const DataDir from{options.from};
  const DataDir data{options.data};
  std::error_code ec;
  for (const auto& path : {from.config(), from.ca_cert(), from.ca_key(), from.secret_key()}) {
    if (!std::filesystem::is_regular_file(path, ec)) {
      return Fail(ErrorCode::kNotFound,
                  fmt::format("--from {}: {} is missing; copy the data directory of a "
                              "coordinator of the installation (docs/ha.md)",
                              from.root.string(), path.filename().string()));
    }
  }
  auto config = CoordinatorConfig::Load(from.config());
  if (!config) return std::unexpected(config.error().WithContext("--from"));
  if (!config->store.postgresql()) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("--from {}: its store is SQLite, which one coordinator alone can "
                            "use; several coordinators share a PostgreSQL store (`fabu-coordinator "
                            "migrate` moves it there, docs/ha.md)",
                            from.root.string()));
  }
  if (auto free = RefuseExistingCoordinator(data); !free) return std::unexpected(free.error());
  if (options.listen) {
    auto address = ParseListenAddress(*options.listen);
    if (!address) return std::unexpected(address.error().WithContext("--listen"));
    config->listen = *options.listen;
  }
  if (!options.store_password_file.empty())
    config->store.password_file = options.store_password_file;
  // The installation's names (the shared service name) and this one's own.
  std::vector<std::string> names = options.hostnames;
  for (const std::string& name : config->hostnames) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  config->hostnames = names;
  auto target = StoreTargetOf(data, config->store);
  if (!target) return std::unexpected(target.error());

  auto made = MakeDataDir(data);
  if (!made) return std::unexpected(made.error());
  InitRollback& rollback = **made;
  // The shared secrets, as they are: every coordinator signs agents'
  // certificates with the one CA and opens the secrets sealed by any other.
  for (const auto& [source, target_path] :
       {std::pair{from.ca_cert(), data.ca_cert()}, std::pair{from.ca_key(), data.ca_key()},
        std::pair{from.secret_key(), data.secret_key()}}) {
    auto content = platform::ReadWholeFile(source);
    if (!content) return std::unexpected(content.error());
    if (auto ok = platform::WriteFileDurably(target_path, *content, 0600); !ok) {
      return std::unexpected(ok.error());
    }
  }
  for (const auto& entry : std::filesystem::directory_iterator(from.trusted(), ec)) {
    if (entry.path().extension() != ".pub") continue;
    auto content = platform::ReadWholeFile(entry.path());
    if (!content) return std::unexpected(content.error());
    if (auto ok =
            platform::WriteFileDurably(data.trusted() / entry.path().filename(), *content, 0600);
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  if (auto ok = CopyFilesNamedByConfig(*config, from, data); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = CreateServerCertificate(data, names); !ok) {
    return std::unexpected(ok.error().WithContext("making this coordinator's certificate"));
  }
  if (auto ok = platform::WriteFileDurably(data.config(), config->ToJson().dump(2) + "\n", 0600);
      !ok) {
    return std::unexpected(ok.error());
  }
  auto store = Store::Open(*target);
  if (!store) return std::unexpected(store.error());
  auto audited = (*store)->Write(LocalOrigin("join"), [&](Transaction& tx) -> Result<void> {
    AuditEvent event("coordinator.join", "coordinator", data.root.filename().string());
    event.after = nlohmann::json{{"listen", config->listen}, {"hostnames", names}};
    tx.Audit(event);
    return {};
  });
  (*store)->Close();
  if (!audited) return std::unexpected(audited.error());
  if (auto ok = platform::SyncDirectory(data.root); !ok) return std::unexpected(ok.error());
  rollback.Commit();
  return {};
}

Result<void> Serve(const ServeOptions& options) {
  const DataDir data{options.data};
  auto config = CoordinatorConfig::Load(data.config());
  if (!config) return std::unexpected(config.error());
  const std::string listen = options.listen.value_or(config->listen);
  auto address = ParseListenAddress(listen);
  if (!address) return std::unexpected(address.error().WithContext("listen"));

  // Before the store opens: SQLite gives its -wal and -shm the mode of the
  // database file.
  TightenDataDir(data);
  // The daemon's one clock: the store, the API and the sweep read it.
  const SystemClock clock;
  auto target = StoreTargetOf(data, config->store);
  if (!target) return std::unexpected(target.error());
  // Before the store, so they outlive every write that notifies them.
  WakeupHub wakeups;
  CoordinatorMetrics metrics(options.version, options.commit);
  auto store = Store::Open(*target, clock);
  if (!store) return std::unexpected(store.error());
  SubscribeListeners((*store)->events(), &wakeups);
  (*store)->ObserveCommits(
      [&metrics](double seconds, std::size_t writes) { metrics.ObserveCommit(seconds, writes); });
  spdlog::info("store {} at schema version {}", target->description, (*store)->schema_version());

  // Webhook secrets are kept sealed; an older coordinator kept them in clear.
  auto secrets = LoadSecretKey(data, **store);
  if (!secrets) return std::unexpected(secrets.error());
  auto sealed = (*store)->Write(LocalOrigin("serve"), [&](Transaction& tx) -> Result<int> {
    auto n = SealClearSubscriptionSecrets(tx, *secrets);
    if (n && *n > 0) {
      AuditEvent event("notify.seal-secrets", "notify_subscription", "*");
      event.after = nlohmann::json{{"sealed", *n}};
      tx.Audit(event);
    }
    return n;
  });
  if (!sealed) return std::unexpected(sealed.error());
  if (*sealed > 0) {
    spdlog::warn("sealed {} webhook secret(s) an older coordinator stored in clear", *sealed);
  }

  // The chain anchored outside the store: a signed checkpoint now, every
  // minute when the head moved, and at shutdown (docs/security.md).
  auto checkpoints = CheckpointWriter::Open(data, **store);
  if (!checkpoints) return std::unexpected(checkpoints.error());
  if (auto ok = (*checkpoints)->Write("start", true); !ok) {
    return std::unexpected(ok.error().WithContext("writing the audit checkpoint"));
  }

  // Uploads cut off by a crash are garbage.
  std::error_code ec;
  std::filesystem::create_directories(data.tmp(), ec);
  for (const auto& entry : std::filesystem::directory_iterator(data.tmp(), ec)) {
    std::filesystem::remove_all(entry.path(), ec);
  }
  std::filesystem::create_directories(data.packages(), ec);

  // The outward CMDB: the configured connectors become the active ones,
  // and their worker delivers whatever the outbox holds, also from before
  // a restart.
  auto connectors = MakeConnectors(config->cmdb, data.root);
  if (!connectors) return std::unexpected(connectors.error().WithContext(data.config().string()));
  std::vector<ConnectorName> names;
  for (const auto& c : *connectors) names.push_back({c->name(), std::string(c->type())});
  if (auto synced = (*store)->Write(LocalOrigin("serve"),
                                    [&](Transaction& tx) -> Result<void> {
                                      SyncConnectors(tx, names);
                                      return {};
                                    });
      !synced) {
    return std::unexpected(synced.error());
  }
  // Release notices go out through the same worker (notify/notice_connector.hpp).
  auto notices = MakeNoticeConnector(**store, config->smtp, data.root, *secrets);
  if (!notices) return std::unexpected(notices.error().WithContext(data.config().string()));
  connectors->push_back(std::move(*notices));
  // What runs on the coordinator's own schedule runs on one coordinator at a
  // time, when several serve one database: the holder of this lease
  // (store/lease.hpp, docs/ha.md). Alone, a coordinator takes it at its first
  // renewal.
  Lease engine_lease(**store, std::string(Lease::kEngine), Lease::HolderName(), config->lease);
  DeliveryWorker delivery(
      **store, std::move(*connectors),
      RetryPolicy{config->cmdb.retry_initial, config->cmdb.retry_max, config->cmdb.notice_give_up},
      std::chrono::seconds(30), &engine_lease);

  Router router;
  CredentialCache agent_credentials;
  UserTokenCache user_tokens;
  // Several coordinators on one PostgreSQL database (docs/ha.md): what wakes
  // a waiter here is told to the others, and what they tell wakes ours.
  std::unique_ptr<PeerSignals> peers;
  if (target->backend == StoreBackend::kPostgresql) {
    peers = std::make_unique<PeerSignals>(
        *target,
        [&wakeups, &agent_credentials, &user_tokens](const std::string& key) {
          if (key == kCredentialsSignal) {
            agent_credentials.ForgetAllFromPeer();
          } else if (key == kUserTokensSignal) {
            user_tokens.ForgetAllFromPeer();
          } else if (key == kOutboxSignal) {
            RingOutboxFromPeer();
          } else {
            wakeups.NotifyFromPeer(key);
          }
        },
        [&wakeups, &agent_credentials, &user_tokens] {
          wakeups.WakeEveryone();
          // What a peer forgot meanwhile was not heard: forget everything.
          agent_credentials.ForgetAllFromPeer();
          user_tokens.ForgetAllFromPeer();
          RingOutboxFromPeer();
        });
    wakeups.SetPublisher([p = peers.get()](const std::string& key) { p->Send(key); });
    agent_credentials.SetOnForgetAll(
        [p = peers.get()] { p->Send(std::string(kCredentialsSignal)); });
    user_tokens.SetOnForgetAll([p = peers.get()] { p->Send(std::string(kUserTokensSignal)); });
    SetOutboxPublisher([p = peers.get()] { p->Send(std::string(kOutboxSignal)); });
  }
  EnrollRefusals enroll_refusals;
  SignInThrottle sign_ins;
  ServerLoad server_load;
  // Agents' client certificates (hosts/agent_certificates.hpp), signed by
  // the coordinator's CA.
  auto client_ca = ClientCertificateAuthority::Load(data);
  if (!client_ca) return std::unexpected(client_ca.error());
  const AgentCertificateMode cert_mode = config->agent_certificates == "required"
                                             ? AgentCertificateMode::kRequired
                                             : AgentCertificateMode::kOptional;
  Store& store_for_certs = **store;
  EnrollCertificates agent_certificates{
      cert_mode,
      [ca = *client_ca, lifetime = config->AgentCertLifetimeSeconds(), &store_for_certs](
          std::string_view csr, std::string_view host) -> Result<HostCertificate> {
        auto issued = ca.Sign(csr, host, store_for_certs.clock().Seconds(), lifetime);
        if (!issued) return std::unexpected(issued.error());
        return HostCertificate{std::move(issued->pem), std::move(issued->serial),
                               issued->not_after};
      }};
  ApiContext api_context{**store,           data,        *config,     wakeups,
                         agent_credentials, user_tokens, *secrets,    enroll_refusals,
                         &metrics,          &sign_ins,   &server_load};
  api_context.agent_certificates = &agent_certificates;
  LastAuditCheck last_audit_check(
      std::chrono::duration_cast<std::chrono::seconds>(kAuditCheckInterval).count());
  api_context.last_audit_check = &last_audit_check;
  SeenMarks seen_marks;
  api_context.seen_marks = &seen_marks;
  RegisterAllRoutes(router, api_context);

  ServerSettings settings;
  settings.host = address->host;
  settings.port = address->port;
  settings.certificate_chain = data.server_cert();
  settings.private_key = data.server_key();
  settings.client_ca = data.ca_cert();
  settings.upload_dir = data.tmp();
  settings.port_file = data.port_file();
  settings.json_body_limit = config->json_body_limit;
  settings.upload_limit = config->upload_limit;
  settings.handshake_timeout = config->handshake_timeout;
  settings.idle_timeout = config->idle_timeout;
  settings.io_timeout = config->io_timeout;
  settings.shutdown_timeout = config->shutdown_timeout;
  settings.workers = config->workers;
  settings.max_connections = static_cast<std::size_t>(config->max_connections);
  settings.reserved_connections = static_cast<std::size_t>(config->reserved_connections);
  settings.max_downloads = static_cast<std::size_t>(config->max_downloads);
  settings.download_queue = static_cast<std::size_t>(config->download_queue);
  settings.download_wait = config->download_wait;
  settings.retry_after = config->retry_after;
  settings.hold_limit = config->wave_hold;
  settings.agent_traffic = IsAgentTraffic;
  settings.hold_next = HoldNextRequest;
  settings.load = &server_load;
  settings.observe = [&metrics](const RequestContext& ctx, int status,
                                std::chrono::steady_clock::duration took) {
    metrics.ObserveRequest(ctx.route, MethodName(ctx.method), status,
                           std::chrono::duration<double>(took).count());
  };

  Store& store_ref = **store;
  settings.authenticate_session = [&store_ref, limits = ConsoleSessionLimits(*config)](
                                      std::string_view id) -> Result<Principal> {
    const auto now = store_ref.clock().Seconds();
    auto check =
        store_ref.Read([&](soci::session& sql) { return CheckSession(sql, id, limits, now); });
    if (!check) return std::unexpected(check.error());
    if (check->stale) {
      // The idle timeout counts from here; nobody waits for it.
      AuditOrigin origin{check->principal.name, std::string(RoleName(check->principal.role)), "",
                         "console"};
      store_ref.WriteAsync(
          std::move(origin),
          [id_hash = check->principal.session->id_sha256, now](Transaction& tx) -> Result<void> {
            TouchSession(tx, id_hash, now);
            return {};
          },
          [](Result<void>) {});
    }
    return std::move(check->principal);
  };
  HttpServer server(
      settings, router,
      [&store_ref, &user_tokens](std::string_view token) {
        return AuthenticateToken(store_ref, user_tokens, token, store_ref.clock().Seconds());
      },
      [&store_ref, &agent_credentials, cert_mode](
          std::string_view credential, const PeerCertificate& peer) -> Result<std::string> {
        const std::uint64_t generation = agent_credentials.Generation();
        auto who = store_ref.ReadCached(
            [&](soci::session& sql, StatementCache& statements) {
              return AuthenticateAgentIdentity(sql, statements, credential);
            },
            Store::ReadFor::kAgent);
        if (!who) return std::unexpected(who.error());
        if (auto ok = CheckAgentCertificate(*who, peer, store_ref.clock().Seconds(), cert_mode);
            !ok) {
          return std::unexpected(ok.error());
        }
        if (!who->previous_serial.empty() && peer.serial == who->serial) {
          // The host uses its renewed certificate: the one it replaced is
          // accepted no longer. Until this is written, its requests come
          // here (an identity with a previous serial is not cached).
          store_ref.WriteAsync(
              AuditOrigin{"host:" + who->host, "agent", "", ""},
              [host = who->host, serial = who->serial](Transaction& tx) -> Result<void> {
                ForgetPreviousCertificate(tx, host, serial);
                return {};
              },
              [&agent_credentials](Result<void>) { agent_credentials.ForgetAll(); });
        } else if (who->previous_serial.empty()) {
          agent_credentials.Remember(credential, *who, generation);
        }
        return who->host;
      },
      &wakeups,
      [&agent_credentials, &store_ref, cert_mode](
          std::string_view credential,
          const PeerCertificate& peer) -> std::optional<Result<std::string>> {
        auto who = agent_credentials.FindIdentity(credential);
        if (!who) return std::nullopt;
        if (auto ok = CheckAgentCertificate(*who, peer, store_ref.clock().Seconds(), cert_mode);
            !ok) {
          return Result<std::string>(std::unexpected(ok.error()));
        }
        return Result<std::string>(std::move(who->host));
      });
  // Host timeouts and rollouts whose hosts are all final (also those left
  // by a restart: every rollout resumes from the store); at once when a wave
  // has parts left to assign (WakeupHub::kSweepKey).
  release::PlanParseOptions plan_options;
  plan_options.categories = config->categories;
  PeriodicWork periodic(server, &wakeups);
  // The lease first, from the start: taken, kept, or seen held by another.
  periodic.EveryFromStart(engine_lease.renew_interval(), [&engine_lease] {
    const bool before = engine_lease.held();
    auto held = engine_lease.Renew();
    if (!held) {
      spdlog::error("lease \"{}\": {}", engine_lease.name(), held.error().message());
    } else if (*held && !before) {
      // The deliveries waiting for the lease start now.
      RingOutbox();
    }
  });
  // `work` as the lease's holder only: skipped while another coordinator
  // holds it; its writes fenced (store/lease.hpp).
  const auto as_holder = [&engine_lease](std::function<void()> work) {
    return [&engine_lease, work = std::move(work)] {
      std::optional<Fence> fence = engine_lease.fence();
      if (!fence) return;
      FenceScope fenced(std::move(fence));
      work();
    };
  };
  periodic.Every(kSweepInterval, as_holder([&store_ref, &wakeups, plan_options] {
                   const auto now = store_ref.clock().Seconds();
                   auto swept = SweepDeployments(store_ref, now, plan_options, wakeups);
                   if (!swept) {
                     spdlog::error("deployment sweep: {}", swept.error().message());
                   } else {
                     if (swept->timed_out > 0) {
                       spdlog::info("deployment sweep: {} host(s) timed out", swept->timed_out);
                     }
                     if (swept->transactions > 1) {
                       spdlog::info(
                           "deployment sweep: {} host(s) woken, a wave assigned in {} transactions",
                           swept->woken, swept->transactions);
                     }
                   }
                 }),
                 std::string(WakeupHub::kSweepKey));
  // The go-live plans' checks on metrics, measured once a second when due
  // (check_runner.hpp).
  CheckRunner check_runner(store_ref,
                           CheckRunnerSettings{config->checks_prometheus_url, config->checks_allow,
                                               std::chrono::seconds(10)},
                           plan_options, wakeups);
  periodic.Every(std::chrono::seconds(1), as_holder([&check_runner] { check_runner.Tick(); }));
  // Refused enrollments counted past an address's quota: one summary entry
  // per address and window once the window has ended, and at shutdown.
  const auto write_refusal_summaries = [&store_ref, &enroll_refusals](std::int64_t now) {
    auto ended = enroll_refusals.TakeEnded(now);
    if (ended.empty()) return;
    auto written = store_ref.Write(LocalOrigin("enroll-refusals"), [&](Transaction& tx) {
      for (const EnrollRefusals::Summary& summary : ended) tx.Audit(summary.ToAuditEvent());
      return Result<void>{};
    });
    if (!written) spdlog::error("recording refused enrollments: {}", written.error().message());
  };
  // The hosts seen by their agents' polls, in one write a second
  // (hosts/seen_marks.hpp), and at shutdown.
  const auto write_seen = [&seen_marks, &store_ref, &clock, origin = LocalOrigin("seen")] {
    if (auto ok = seen_marks.Write(store_ref, origin, clock.Seconds()); !ok) {
      spdlog::warn("marking hosts seen: {}", ok.error().message());
    }
  };
  periodic.Every(std::chrono::seconds(1), write_seen);
  periodic.Every(std::chrono::seconds(5),
                 [&write_refusal_summaries, &clock] { write_refusal_summaries(clock.Seconds()); });
  // The audit chain checked while the daemon runs: whole at start, then
  // what was written since, every interval (audit_anchor.hpp).
  AuditWatch audit_watch(
      **store, [&metrics, &clock, &last_audit_check](const AuditWatch::Finding& finding) {
        const std::int64_t at = clock.Seconds();
        metrics.SetAuditCheck(finding.intact, finding.verified_seq, static_cast<double>(at));
        last_audit_check.Set({finding.intact, finding.verified_seq, finding.reason, at});
      });
  periodic.EveryFromStart(kAuditCheckInterval, [&audit_watch] { audit_watch.Check(); });
  CheckpointWriter& checkpoint_writer = **checkpoints;
  periodic.Every(kCheckpointInterval, [&checkpoint_writer] {
    if (auto ok = checkpoint_writer.Write("periodic", false); !ok) {
      spdlog::error("audit checkpoint: {}", ok.error().message());
    }
  });
  // Retention (retention.hpp): once a day, inside the daemon, through its
  // own store, so it is one more writer of the group commit and never races
  // a second process for the database.
  periodic.Every(kGcInterval, as_holder([&store_ref, &data, &config, plan_options] {
                   auto summary = CollectGarbage(store_ref, data, config->retention_days,
                                                 plan_options, LocalOrigin("gc"));
                   if (!summary) {
                     spdlog::error("gc: {}", summary.error().message());
                     return;
                   }
                   std::string text = DescribeGc(*summary);
                   if (!text.empty() && text.back() == '\n') text.pop_back();
                   spdlog::info("{}", text);
                   for (const std::string& problem : summary->problems)
                     spdlog::warn("gc: {}", problem);
                 }));
  periodic.Start();
  delivery.Start();
  auto ran = server.Run();
  delivery.Stop();
  // Another coordinator takes the schedule over at once.
  engine_lease.Release();
  SetOutboxPublisher(nullptr);
  write_seen();
  write_refusal_summaries(std::numeric_limits<std::int64_t>::max());
  if (auto ok = checkpoint_writer.Write("shutdown", true); !ok) {
    spdlog::error("audit checkpoint: {}", ok.error().message());
  }
  (*store)->Close();
  return ran;
}

namespace {

// The data directory's coordinator config, for a command run beside it.
Result<CoordinatorConfig> ConfigBeside(const DataDir& data) {
  std::error_code ec;
  const auto none = [&] {
    return Fail(ErrorCode::kNotFound, fmt::format("{} holds no coordinator: run "
                                                  "`fabu-coordinator init --data {}` first",
                                                  data.root.string(), data.root.string()));
  };
  if (!std::filesystem::is_regular_file(data.config(), ec)) return none();
  auto config = CoordinatorConfig::Load(data.config());
  if (config && !config->store.postgresql() &&
      !std::filesystem::is_regular_file(data.store(), ec)) {
    return none();
  }
  return config;
}

// The store of the data directory, opened for a command run beside it.
Result<std::unique_ptr<Store>> OpenStoreBeside(const DataDir& data,
                                               const CoordinatorConfig& config) {
  auto target = StoreTargetOf(data, config.store);
  if (!target) return std::unexpected(target.error());
  return Store::Open(*target);
}

}  // namespace

Result<std::string> TrustList(const std::filesystem::path& data_root) {
  const DataDir data{data_root};
  auto config = ConfigBeside(data);
  if (!config) return std::unexpected(config.error());
  auto keys = ListTrustedKeys(data, config->trusted_keys);
  if (!keys) return std::unexpected(keys.error());
  if (keys->empty()) {
    return fmt::format(
        "no publisher key is trusted: `fabu-coordinator trust add --data {} "
        "KEY.pub`\n",
        data.root.string());
  }
  std::string out;
  for (const TrustedKey& key : *keys) {
    out += fmt::format("{}  {}{}\n", key.key_id, key.file.string(),
                       key.from_config ? "  (config.json trusted_keys)" : "");
  }
  return out;
}

Result<void> TrustRemove(const std::filesystem::path& data_root, const std::string& key_id,
                         const std::string& reason) {
  const DataDir data{data_root};
  if (release::IsBlank(reason)) {
    return Fail(ErrorCode::kInvalidArgument,
                "removing a trusted key needs a reason (--reason): it is kept in the audit trail");
  }
  auto config = ConfigBeside(data);
  if (!config) return std::unexpected(config.error());
  // The store first: a removal is never left without its audit entry.
  auto store = OpenStoreBeside(data, *config);
  if (!store) return std::unexpected(store.error());
  // The key's PEM, to put back should the audit fail.
  std::optional<std::string> pem;
  if (auto keys = ListTrustedKeys(data, config->trusted_keys)) {
    for (const TrustedKey& key : *keys) {
      if (key.key_id != key_id || key.from_config) continue;
      if (auto text = platform::ReadWholeFile(key.file)) pem = std::move(*text);
    }
  }
  auto removed = UntrustPublisherKey(data, config->trusted_keys, key_id);
  if (!removed) {
    (*store)->Close();
    return std::unexpected(removed.error());
  }
  auto audited = (*store)->Write(LocalOrigin("trust-remove"), [&](Transaction& tx) -> Result<void> {
    AuditEvent event("trust.remove", "publisher_key", key_id);
    event.detail = nlohmann::json{{"reason", reason}, {"file", removed->file.filename().string()}};
    tx.Audit(event);
    return {};
  });
  (*store)->Close();
  if (!audited) {
    // Trusted again, as before the command: nothing half-done.
    if (pem) (void)platform::WriteFileDurably(removed->file, *pem, 0600);
    return std::unexpected(audited.error().WithContext("recording the removal (the key stays)"));
  }
  return {};
}

Result<GcSummary> Gc(const std::filesystem::path& data_root) {
  const DataDir data{data_root};
  auto config = ConfigBeside(data);
  if (!config) return std::unexpected(config.error());
  auto store = OpenStoreBeside(data, *config);
  if (!store) return std::unexpected(store.error());
  release::PlanParseOptions plan_options;
  plan_options.categories = config->categories;
  auto summary =
      CollectGarbage(**store, data, config->retention_days, plan_options, LocalOrigin("gc"));
  (*store)->Close();
  return summary;
}

Result<std::string> TrustAdd(const std::filesystem::path& data_root,
                             const std::filesystem::path& pem) {
  const DataDir data{data_root};
  auto config = ConfigBeside(data);
  if (!config) return std::unexpected(config.error());
  auto key_id = TrustPublisherKey(data, pem);
  if (!key_id) return key_id;
  auto store = OpenStoreBeside(data, *config);
  if (!store) return std::unexpected(store.error());
  auto audited = (*store)->Write(LocalOrigin("trust-add"), [&](Transaction& tx) -> Result<void> {
    AuditEvent event("trust.add", "publisher_key", *key_id);
    event.after = nlohmann::json{{"key_id", *key_id}, {"file", pem.filename().string()}};
    tx.Audit(event);
    return {};
  });
  (*store)->Close();
  if (!audited) return std::unexpected(audited.error());
  return key_id;
}

}  // namespace fabu::coordinator
