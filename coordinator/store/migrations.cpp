#include "coordinator/store/migrations.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include <string>

#include "coordinator/common/clock.hpp"
#include "coordinator/store/dialect.hpp"

namespace fabu::coordinator {

const std::vector<Migration>& AllMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "users and the audit trail",
       {
           "CREATE TABLE users ("
           " name TEXT PRIMARY KEY,"
           " role TEXT NOT NULL,"
           " token_sha256 TEXT NOT NULL UNIQUE,"
           " disabled INTEGER NOT NULL DEFAULT 0,"
           " created TEXT NOT NULL,"
           " created_by TEXT NOT NULL)",
           "CREATE TABLE audit_log ("
           " seq BIGINT PRIMARY KEY,"
           " time TEXT NOT NULL,"
           " actor TEXT NOT NULL,"
           " role TEXT NOT NULL,"
           " action TEXT NOT NULL,"
           " object_type TEXT NOT NULL,"
           " object_id TEXT NOT NULL,"
           " release_id TEXT NOT NULL,"
           " request_id TEXT NOT NULL,"
           " source TEXT NOT NULL,"
           " before_sha256 TEXT NOT NULL,"
           " after_sha256 TEXT NOT NULL,"
           " detail TEXT NOT NULL,"
           " prev_hash TEXT NOT NULL,"
           " hash TEXT NOT NULL)",
           "CREATE INDEX audit_log_release ON audit_log (release_id, seq)",
           "CREATE TABLE audit_head ("
           " id INTEGER PRIMARY KEY,"
           " seq BIGINT NOT NULL,"
           " hash TEXT NOT NULL)",
       }},
      {2,
       "packages",
       {
           "CREATE TABLE packages ("
           " id TEXT PRIMARY KEY,"
           " name TEXT NOT NULL,"
           " version TEXT NOT NULL,"
           " size BIGINT NOT NULL,"
           " key_id TEXT NOT NULL,"
           " manifest TEXT NOT NULL,"
           " uploaded TEXT NOT NULL,"
           " uploaded_by TEXT NOT NULL)",
           "CREATE INDEX packages_name ON packages (name, version)",
       }},
      {3,
       "release plans",
       {
           "CREATE TABLE releases ("
           " id TEXT PRIMARY KEY,"
           " seq BIGINT NOT NULL UNIQUE,"
           " title TEXT NOT NULL,"
           " product TEXT NOT NULL,"
           " version TEXT NOT NULL,"
           " category TEXT NOT NULL,"
           " state TEXT NOT NULL,"
           " close_code TEXT NOT NULL DEFAULT '',"
           " owner TEXT NOT NULL,"
           " created TEXT NOT NULL,"
           " updated TEXT NOT NULL,"
           " record TEXT NOT NULL)",
           "CREATE INDEX releases_product ON releases (product, state)",
           "CREATE INDEX releases_state ON releases (state)",
           "CREATE TABLE release_change_refs ("
           " release_id TEXT NOT NULL,"
           " change_ref TEXT NOT NULL,"
           " PRIMARY KEY (release_id, change_ref))",
           "CREATE INDEX release_change_refs_ref ON release_change_refs (change_ref)",
       }},
      {4,
       "agents: enrollment tokens and hosts",
       {
           // Times compared by the coordinator are Unix seconds (BIGINT).
           "CREATE TABLE enroll_tokens ("
           " token_sha256 TEXT PRIMARY KEY,"
           " labels TEXT NOT NULL,"
           " uses_allowed INTEGER NOT NULL,"
           " uses INTEGER NOT NULL,"
           " expires BIGINT NOT NULL,"
           " created TEXT NOT NULL,"
           " created_by TEXT NOT NULL)",
           "CREATE TABLE hosts ("
           " name TEXT PRIMARY KEY,"
           " credential_sha256 TEXT NOT NULL UNIQUE,"
           " labels TEXT NOT NULL,"
           " inventory TEXT NOT NULL,"
           " agent_version TEXT NOT NULL,"
           " enrolled TEXT NOT NULL,"
           " last_seen BIGINT NOT NULL,"
           " removed INTEGER NOT NULL,"
           " removed_at TEXT NOT NULL,"
           " removed_by TEXT NOT NULL)",
           "CREATE TABLE host_apps ("
           " host TEXT NOT NULL,"
           " app TEXT NOT NULL,"
           " current_version TEXT NOT NULL,"
           " releases TEXT NOT NULL,"
           " updated TEXT NOT NULL,"
           " PRIMARY KEY (host, app))",
       }},
      {5,
       "deployments and their events",
       {
           "CREATE TABLE deployments ("
           " id TEXT PRIMARY KEY,"
           " release_id TEXT NOT NULL,"
           " host TEXT NOT NULL,"
           " attempt INTEGER NOT NULL,"
           " environment TEXT NOT NULL,"
           " kind TEXT NOT NULL,"
           " app TEXT NOT NULL,"
           " version TEXT NOT NULL,"
           " package_id TEXT NOT NULL,"
           " package_size BIGINT NOT NULL,"
           " package_url TEXT NOT NULL,"
           " host_timeout BIGINT NOT NULL,"
           " step TEXT NOT NULL,"
           " final INTEGER NOT NULL,"
           " result TEXT NOT NULL,"
           " message TEXT NOT NULL,"
           " last_sequence BIGINT NOT NULL,"
           " created BIGINT NOT NULL,"
           " started BIGINT NOT NULL,"
           " finished BIGINT NOT NULL,"
           " deadline BIGINT NOT NULL,"
           " UNIQUE (release_id, host, attempt))",
           "CREATE INDEX deployments_host ON deployments (host, final)",
           "CREATE INDEX deployments_open ON deployments (final, deadline)",
           "CREATE TABLE deployment_events ("
           " deployment TEXT NOT NULL,"
           " sequence BIGINT NOT NULL,"
           " step TEXT NOT NULL,"
           " failed_step TEXT NOT NULL,"
           " app TEXT NOT NULL,"
           " version TEXT NOT NULL,"
           " message TEXT NOT NULL,"
           " output TEXT NOT NULL,"
           " time BIGINT NOT NULL,"
           " received TEXT NOT NULL,"
           " PRIMARY KEY (deployment, sequence))",
       }},
      {6,
       "rollouts: waves, freezes, incidents",
       {
           // One row per production rollout: where the engine stands. Every
           // decision is made from these rows and the deployments, inside one
           // transaction, so a restart goes on from exactly here.
           "CREATE TABLE rollouts ("
           " release_id TEXT PRIMARY KEY,"
           " package_id TEXT NOT NULL,"
           " wave_sizes TEXT NOT NULL,"          // JSON: cumulative host counts
           " thresholds TEXT NOT NULL,"          // JSON: failures tolerated per wave
           " current_wave INTEGER NOT NULL,"     // the last wave started; -1: none
           " wave_done_at BIGINT NOT NULL,"      // when it ended within its threshold; 0: not yet
           " gates_confirmed INTEGER NOT NULL,"  // control points passed
           " accepted_wave INTEGER NOT NULL,"    // a failed wave a person resumed past; -1
           " aborted INTEGER NOT NULL,"
           " pause_kind TEXT NOT NULL,"  // '', person, window, freeze
           " waiting TEXT NOT NULL,"     // why nothing moves now, for people
           " started BIGINT NOT NULL,"
           " finished BIGINT NOT NULL)",
           // The targets in the stable order the waves take them.
           "CREATE TABLE rollout_hosts ("
           " release_id TEXT NOT NULL,"
           " position INTEGER NOT NULL,"
           " host TEXT NOT NULL,"
           " wave INTEGER NOT NULL,"
           " from_version TEXT NOT NULL,"
           " PRIMARY KEY (release_id, position),"
           " UNIQUE (release_id, host))",
           "ALTER TABLE deployments ADD COLUMN wave INTEGER NOT NULL DEFAULT -1",
           "ALTER TABLE deployments ADD COLUMN from_version TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE deployments ADD COLUMN observe BIGINT NOT NULL DEFAULT 0",
           "ALTER TABLE deployments ADD COLUMN observe_interval BIGINT NOT NULL DEFAULT 0",
           "CREATE INDEX deployments_release ON deployments (release_id, host, attempt)",
           "CREATE INDEX deployments_wave ON deployments (release_id, environment, kind, wave, "
           "final)",
           "CREATE TABLE freezes ("
           " id TEXT PRIMARY KEY,"
           " seq BIGINT NOT NULL UNIQUE,"
           " starts BIGINT NOT NULL,"
           " ends BIGINT NOT NULL,"
           " start_text TEXT NOT NULL,"
           " end_text TEXT NOT NULL,"
           " reason TEXT NOT NULL,"
           " selector TEXT NOT NULL,"
           " created TEXT NOT NULL,"
           " created_by TEXT NOT NULL,"
           " removed INTEGER NOT NULL,"
           " removed_by TEXT NOT NULL,"
           " removed_at TEXT NOT NULL)",
           "CREATE TABLE incidents ("
           " id TEXT PRIMARY KEY,"
           " seq BIGINT NOT NULL UNIQUE,"
           " release_id TEXT NOT NULL,"
           " host TEXT NOT NULL,"
           " severity TEXT NOT NULL,"
           " summary TEXT NOT NULL,"
           " source TEXT NOT NULL,"  // observation, manual
           " state TEXT NOT NULL,"   // open, closed
           " created BIGINT NOT NULL,"
           " created_by TEXT NOT NULL,"
           " closed BIGINT NOT NULL,"
           " closed_by TEXT NOT NULL)",
           "CREATE INDEX incidents_release ON incidents (release_id)",
       }},
      {7,
       "the CMDB: upgrade records, baselines and the outbox",
       {
           // 升级记录表 (procedure §8): one row per final production deployment.
           "CREATE TABLE upgrade_records ("
           " id BIGINT PRIMARY KEY,"
           " deployment_id TEXT NOT NULL UNIQUE,"
           " release_id TEXT NOT NULL,"
           " host TEXT NOT NULL,"
           " package TEXT NOT NULL,"
           " package_id TEXT NOT NULL,"
           " from_version TEXT NOT NULL,"
           " from_source TEXT NOT NULL,"
           " to_version TEXT NOT NULL,"
           " started BIGINT NOT NULL,"
           " finished BIGINT NOT NULL,"
           " result TEXT NOT NULL,"
           " operator TEXT NOT NULL,"
           " kind TEXT NOT NULL,"
           " recorded TEXT NOT NULL)",
           "CREATE INDEX upgrade_records_release ON upgrade_records (release_id, id)",
           "CREATE INDEX upgrade_records_host ON upgrade_records (host, package, id)",
           "CREATE TABLE cmdb_baselines ("
           " release_id TEXT NOT NULL,"
           " phase TEXT NOT NULL,"
           " taken BIGINT NOT NULL,"
           " host TEXT NOT NULL,"
           " app TEXT NOT NULL,"
           " version TEXT NOT NULL,"
           " PRIMARY KEY (release_id, phase, host, app))",
           "CREATE TABLE cmdb_connectors ("
           " name TEXT PRIMARY KEY,"
           " type TEXT NOT NULL,"
           " active INTEGER NOT NULL,"
           " updated TEXT NOT NULL)",
           // The transactional outbox: written with the result it reports.
           "CREATE TABLE cmdb_outbox ("
           " id BIGINT PRIMARY KEY,"
           " connector TEXT NOT NULL,"
           " idempotency_key TEXT NOT NULL,"
           " release_id TEXT NOT NULL,"
           " payload TEXT NOT NULL,"
           " state TEXT NOT NULL,"
           " attempts INTEGER NOT NULL,"
           " next_attempt BIGINT NOT NULL,"
           " last_error TEXT NOT NULL,"
           " created TEXT NOT NULL,"
           " delivered TEXT NOT NULL,"
           " waived_by TEXT NOT NULL,"
           " waive_reason TEXT NOT NULL,"
           " UNIQUE (connector, idempotency_key))",
           "CREATE INDEX cmdb_outbox_connector ON cmdb_outbox (connector, state, id)",
           "CREATE INDEX cmdb_outbox_release ON cmdb_outbox (release_id, state)",
       }},
      {8,
       "records: review notes of releases",
       {
           // The failed-release review: what the people learned,
           // kept beside the release record (which the workflow owns).
           "CREATE TABLE release_review_notes ("
           " release_id TEXT PRIMARY KEY,"
           " notes TEXT NOT NULL,"
           " updated BIGINT NOT NULL,"
           " updated_by TEXT NOT NULL)",
           "CREATE INDEX incidents_created ON incidents (created)",
       }},
      {9,
       "notify: subscriptions to release notices",
       {
           // Notices: who gets which release events, by webhook or
           // e-mail. A removed row stays (removed set) so ids, part of
           // the outbox connector names, are never reused.
           "CREATE TABLE notify_subscriptions ("
           " id TEXT PRIMARY KEY,"
           " seq BIGINT NOT NULL UNIQUE,"
           " events TEXT NOT NULL,"
           " channel TEXT NOT NULL,"
           " target TEXT NOT NULL,"
           " secret TEXT NOT NULL,"
           " time_zone TEXT NOT NULL,"
           " created TEXT NOT NULL,"
           " created_by TEXT NOT NULL,"
           " removed TEXT NOT NULL)",
       }},
      {10,
       "rollouts: waves assigned in parts",
       {
           // Assignment in parts: a wave's hosts are assigned in transactions of
           // first_part, first_part, 2 * first_part, ... hosts, each answered
           // once it commits (rollout_engine.hpp). Fixed when the rollout
           // begins, like its wave sizes.
           "ALTER TABLE rollouts ADD COLUMN first_part BIGINT NOT NULL DEFAULT 500",
           // 1 while the current wave has hosts left to assign: the engine
           // then goes on with it instead of waiting for the wave's end.
           "ALTER TABLE rollouts ADD COLUMN assigning INTEGER NOT NULL DEFAULT 0",
       }},
      {11,
       "hosts: repeatable enrollment",
       {
           // What answers the retry of an enrollment whose answer was lost
           // (hosts.hpp, EnrollHost): the token it used, the SHA-256 of the
           // agent's enroll key and the credential sealed with that key.
           // Empty for hosts enrolled without a key (and before this).
           "ALTER TABLE hosts ADD COLUMN enroll_token_sha256 TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE hosts ADD COLUMN enroll_key_sha256 TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE hosts ADD COLUMN enroll_sealed TEXT NOT NULL DEFAULT ''",
       }},
      {12,
       "enroll tokens: revocation",
       {
           // When and by whom a token was revoked (`fabu enroll-token
           // revoke`); '' while it is not. A revoked token enrolls no host.
           "ALTER TABLE enroll_tokens ADD COLUMN revoked TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE enroll_tokens ADD COLUMN revoked_by TEXT NOT NULL DEFAULT ''",
       }},
      {13,
       "notify: the language of a subscription",
       {
           // The language its notices are written in (`fabu notify add
           // --lang`, coordinator/notify/notices.hpp): "en" or "zh-CN".
           // Subscriptions made before this were English.
           "ALTER TABLE notify_subscriptions ADD COLUMN lang TEXT NOT NULL DEFAULT 'en'",
       }},
      {14,
       "users: token expiry; hosts: revocation",
       {
           // When the user's token stops working (Unix seconds; `fabu user
           // token rotate` makes a new one). 0: never, as for the tokens
           // made before this.
           "ALTER TABLE users ADD COLUMN token_expires INTEGER NOT NULL DEFAULT 0",
           // Why the host was revoked (`fabu host revoke --reason`); '' for
           // a host removed without one (`fabu host remove`) or not removed.
           "ALTER TABLE hosts ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT ''",
       }},
      {15,
       "console: sessions and each person's language",
       {
           // A person signed in to the web console (auth/sessions.hpp): the
           // SHA-256 of the cookie's id (never the id), the CSRF token the
           // page sends back, and the times the idle and absolute timeouts
           // count from (Unix seconds). Sign-out deletes the row.
           "CREATE TABLE console_sessions ("
           " id_sha256 TEXT PRIMARY KEY,"
           " user_name TEXT NOT NULL REFERENCES users(name),"
           " csrf TEXT NOT NULL,"
           " source TEXT NOT NULL,"
           " created BIGINT NOT NULL,"
           " last_seen BIGINT NOT NULL,"
           " expires BIGINT NOT NULL)",
           "CREATE INDEX console_sessions_user ON console_sessions(user_name)",
           // The console's language of the person: "en", "zh-CN", or ''
           // until chosen (then the browser's).
           "ALTER TABLE users ADD COLUMN console_lang TEXT NOT NULL DEFAULT ''",
       }},
      {16,
       "rollouts: hosts that join late; baselines: why a host is not on the version",
       {
           // The plan's targets.late_joiners, its selector and max_failures,
           // fixed when the rollout starts: a host that enrolls matching
           // them later joins the next wave not started (rollout_engine.hpp,
           // JoinLateHost) without the release being read again.
           "ALTER TABLE rollouts ADD COLUMN late_joiners INTEGER NOT NULL DEFAULT 0",
           "ALTER TABLE rollouts ADD COLUMN selector TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE rollouts ADD COLUMN max_failures TEXT NOT NULL DEFAULT ''",
           // When the host joined the rollout late (Unix seconds); 0 for the
           // targets fixed by `release start`.
           "ALTER TABLE rollout_hosts ADD COLUMN joined BIGINT NOT NULL DEFAULT 0",
           // At close, why a host matching the targets is not on the
           // release's version ('' when it is, and in the `before` baseline).
           "ALTER TABLE cmdb_baselines ADD COLUMN reason TEXT NOT NULL DEFAULT ''",
       }},
      {17,
       "hosts: client certificates",
       {
           // The host's client certificate (mutual TLS, hosts/agent_certificates.hpp):
           // the serial (lower-case hex) of the current one, '' for a host
           // without one (enrolled without a CSR, or before this); its
           // notAfter (Unix seconds) and PEM (public: repeated to a retried
           // enrollment); the serial replaced by the last renewal, accepted
           // until `cert_previous_until` so an agent whose renewal answer
           // was lost is not shut out (Unix seconds; 0: none).
           "ALTER TABLE hosts ADD COLUMN cert_serial TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE hosts ADD COLUMN cert_not_after BIGINT NOT NULL DEFAULT 0",
           "ALTER TABLE hosts ADD COLUMN cert_pem TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE hosts ADD COLUMN cert_previous_serial TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE hosts ADD COLUMN cert_previous_until BIGINT NOT NULL DEFAULT 0",
       }},
      {18,
       "rollout_measurements: the checks on metrics of each wave",
       {
           // One measurement of a go-live plan's check (release/metric_check.hpp)
           // after a wave: `seq` counts the check's measurements of that wave
           // (a wave judged again after a retry adds to them; its measurements
           // count from its new end, rollouts.wave_done_at); `outcome` pass,
           // fail, inconclusive or error; `value` the number judged as text
           // ('' none; "NaN", "+Inf"); `detail` why, in words.
           "CREATE TABLE rollout_measurements ("
           " release_id TEXT NOT NULL REFERENCES releases(id),"
           " wave INTEGER NOT NULL,"
           " check_name TEXT NOT NULL,"
           " seq INTEGER NOT NULL,"
           " at BIGINT NOT NULL,"
           " outcome TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " detail TEXT NOT NULL,"
           " PRIMARY KEY (release_id, wave, check_name, seq))",
       }},
      {19,
       "preflight: each host's answer to whether it could install a release now",
       {
           // One round of `fabu release preflight` (deploy/preflight.hpp): who
           // asked and when, and an approver's override of its "would fail"
           // answers for `release start` ('' when none).
           "CREATE TABLE preflight_rounds ("
           " release_id TEXT NOT NULL REFERENCES releases(id),"
           " round INTEGER NOT NULL,"
           " asked BIGINT NOT NULL,"
           " asked_by TEXT NOT NULL,"
           " override_by TEXT NOT NULL,"
           " override_reason TEXT NOT NULL,"
           " override_at BIGINT NOT NULL,"
           // The question put to every host (protocol PreflightRequest, JSON).
           " request TEXT NOT NULL,"
           " PRIMARY KEY (release_id, round))",
           // Each production target of a round: `answered` 0 until the host
           // answers; `ready` 1 or 0 then; `reasons` a JSON list of texts.
           "CREATE TABLE preflight_hosts ("
           " release_id TEXT NOT NULL,"
           " round INTEGER NOT NULL,"
           " host TEXT NOT NULL,"
           " answered BIGINT NOT NULL,"
           " ready INTEGER NOT NULL,"
           " reasons TEXT NOT NULL,"
           " free_bytes BIGINT NOT NULL,"
           " installed_version TEXT NOT NULL,"
           " PRIMARY KEY (release_id, round, host),"
           " FOREIGN KEY (release_id, round) REFERENCES preflight_rounds(release_id, round))",
           // What an agent's poll looks for: its questions not answered yet.
           "CREATE INDEX preflight_hosts_open ON preflight_hosts(host, answered)",
       }},
      {20,
       "leases and package chunks: several coordinators on one database",
       {
           // One row per lease (store/lease.hpp): its holder ("HOST:PID:ID"),
           // the fencing token (grows by one at every takeover), when it
           // expires and when this holder took it (milliseconds, the
           // database's clock).
           "CREATE TABLE leases ("
           " name TEXT PRIMARY KEY,"
           " holder TEXT NOT NULL,"
           " token BIGINT NOT NULL,"
           " expires_ms BIGINT NOT NULL,"
           " acquired_ms BIGINT NOT NULL)",
           // Each package's bytes in chunks of 1 MiB (packages/package_store.hpp):
           // written on PostgreSQL only, where several coordinators serve
           // every package; chunk `seq` holds bytes seq * 1 MiB onwards.
           "CREATE TABLE package_chunks ("
           " package_id TEXT NOT NULL,"
           " seq INTEGER NOT NULL,"
           " data BLOB NOT NULL,"
           " PRIMARY KEY (package_id, seq))",
       }},
  };
  return kMigrations;
}

Result<int> Migrate(soci::session& sql, std::span<const Migration> migrations, const Clock& clock) {
  try {
    const StoreBackend backend = BackendOf(sql);
    sql << MigrationSql(backend,
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version INTEGER PRIMARY KEY,"
                        " name TEXT NOT NULL,"
                        " applied TEXT NOT NULL)");
    int current = 0;
    soci::indicator ind = soci::i_null;
    sql << "SELECT MAX(version) FROM schema_migrations", soci::into(current, ind);
    if (ind != soci::i_ok) current = 0;
    const int newest = migrations.empty() ? 0 : migrations.back().version;
    if (current > newest) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("the store has schema version {} but this fabu-coordinator knows "
                              "only up to {}: run a newer fabu-coordinator",
                              current, newest));
    }
    for (const Migration& migration : migrations) {
      if (migration.version <= current) continue;
      soci::transaction transaction(sql);
      for (std::string_view statement : migration.statements) {
        sql << MigrationSql(backend, statement);
      }
      int version = migration.version;
      std::string name(migration.name);
      std::string applied = clock.Utc();
      sql << "INSERT INTO schema_migrations (version, name, applied) VALUES (:v, :n, :a)",
          soci::use(version), soci::use(name), soci::use(applied);
      transaction.commit();
      current = migration.version;
    }
    return current;
  } catch (const std::exception& e) {
    return std::unexpected(ErrorFromException(e, ErrorCode::kIo, "migrating the store schema"));
  }
}

}  // namespace fabu::coordinator
