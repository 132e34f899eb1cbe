// The outbox (cmdb.hpp): the messages for outside CMDBs and notice
// subscribers, queued in the caller's transaction and sent by the delivery
// worker (delivery.hpp); the connectors they go to; and whether a release's
// CMDB update is confirmed.
#include <fmt/format.h>
#include <soci/soci.h>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/cmdb/cmdb_rows.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/release/release_plan.hpp"
#include "coordinator/store/dialect.hpp"
#include "coordinator/store/row_query.hpp"

namespace fabu::coordinator {
namespace {

using cmdb_detail::TimeOrNull;
using nlohmann::json;

long long NextId(soci::session& sql, const char* table) {
  long long id = 0;
  soci::indicator ind = soci::i_null;
  sql << fmt::format("SELECT MAX(id) FROM {}", table), soci::into(id, ind);
  return (ind == soci::i_ok ? id : 0) + 1;
}

constexpr const char* kOutboxColumns =
    "id, connector, idempotency_key, release_id, payload, state, attempts, next_attempt, "
    "last_error, created, delivered";

struct OutboxRow {
  long long id = 0, attempts = 0, next_attempt = 0;
  std::string connector, key, release_id, payload, state, last_error, created, delivered;

  void Into(soci::statement& st) {
    st.exchange(soci::into(id));
    st.exchange(soci::into(connector));
    st.exchange(soci::into(key));
    st.exchange(soci::into(release_id));
    st.exchange(soci::into(payload));
    st.exchange(soci::into(state));
    st.exchange(soci::into(attempts));
    st.exchange(soci::into(next_attempt));
    st.exchange(soci::into(last_error));
    st.exchange(soci::into(created));
    st.exchange(soci::into(delivered));
  }
  OutboxMessage Value() const {
    return OutboxMessage{id,       connector,    key,        release_id, payload,  state,
                         attempts, next_attempt, last_error, created,    delivered};
  }
};

}  // namespace

namespace {

// Outbox messages, each row a JSON object (EnqueueOutboxMessages); returns
// the keys of those queued.
struct EnqueueStatement {
  explicit EnqueueStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kRows[] = {{"id", true}, {"c"}, {"k"}, {"r"}, {"p"}, {"cr"}};
    st.exchange(soci::into(key));
    st.exchange(soci::use(rows, "rows"));
    st.exchange(soci::use(state, "s"));
    st.alloc();
    // "WHERE true": SQLite reads ON CONFLICT after a SELECT only behind a WHERE.
    st.prepare(fmt::format(
        "INSERT INTO cmdb_outbox (id, connector, idempotency_key, release_id, payload, state, "
        "attempts, next_attempt, last_error, created, delivered, waived_by, waive_reason) SELECT "
        "id, c, k, r, p, :s, 0, 0, '', cr, '', '', '' FROM {} WHERE true ON CONFLICT (connector, "
        "idempotency_key) DO NOTHING RETURNING idempotency_key",
        JsonRowsSql(BackendOf(sql), "rows", kRows, "m")));
    st.define_and_bind();
  }
  std::string rows, key, state{kOutboxPending};
  soci::statement st;
};

}  // namespace

std::map<std::string, std::size_t> EnqueueOutboxMessages(
    Transaction& tx, std::span<const NewOutboxMessage> messages) {
  std::map<std::string, std::size_t> queued;
  if (messages.empty()) return queued;
  long long id = NextId(tx.sql(), "cmdb_outbox");
  const std::string created = tx.clock().Utc();
  json rows = json::array();
  for (const NewOutboxMessage& m : messages) {
    rows.push_back({{"id", id++},
                    {"c", m.connector},
                    {"k", m.key},
                    {"r", m.release_id},
                    {"p", m.payload},
                    {"cr", created}});
  }
  EnqueueStatement& enqueue = tx.Cached<EnqueueStatement>();
  enqueue.rows = rows.dump();
  enqueue.st.execute(false);
  while (enqueue.st.fetch()) ++queued[enqueue.key];
  return queued;
}

bool EnqueueOutboxMessage(Transaction& tx, const std::string& connector, const std::string& key,
                          const std::string& release_id, const std::string& payload) {
  const NewOutboxMessage message{connector, key, release_id, payload};
  return !EnqueueOutboxMessages(tx, std::span(&message, 1)).empty();
}

json CmdbConfirmation::ToJson() const {
  return {{"release", release_id}, {"records", records},    {"unrecorded", unrecorded},
          {"pending", pending},    {"failing", failing},    {"delivered", delivered},
          {"waived", waived},      {"confirmed", confirmed}};
}

CmdbConfirmation ConfirmationOf(soci::session& sql, std::string_view release_id) {
  CmdbConfirmation c;
  c.release_id = std::string(release_id);
  std::string key(release_id), env(kProductionEnvironment);
  long long n = 0;
  sql << "SELECT COUNT(*) FROM upgrade_records WHERE release_id = :r", soci::use(key),
      soci::into(n);
  c.records = n;
  sql << "SELECT COUNT(*) FROM deployments d WHERE d.release_id = :r AND d.environment = :e AND "
         "d.final = 1 AND NOT EXISTS (SELECT 1 FROM upgrade_records u WHERE u.deployment_id = "
         "d.id)",
      soci::use(key), soci::use(env), soci::into(n);
  c.unrecorded = n;
  std::string state;
  long long count = 0;
  soci::statement st = OneShot(sql,
                               "SELECT state, COUNT(*) FROM cmdb_outbox WHERE "
                               "release_id = :r AND connector NOT LIKE 'notify:%' GROUP BY state",
                               soci::use(key), soci::into(state), soci::into(count));
  st.execute(false);
  while (st.fetch()) {
    if (state == kOutboxPending) c.pending = count;
    if (state == kOutboxFailing) c.failing = count;
    if (state == kOutboxDelivered) c.delivered = count;
    if (state == kOutboxWaived) c.waived = count;
  }
  c.confirmed = c.unrecorded == 0 && c.pending == 0 && c.failing == 0;
  return c;
}

Result<std::int64_t> WaiveDeliveries(Transaction& tx, std::string_view release_id,
                                     const release::Actor& actor, std::string_view reason) {
  if (actor.role != release::Role::kApprover) {
    return Fail(ErrorCode::kPermissionDenied,
                fmt::format("waiving CMDB deliveries needs role approver (you are {})",
                            release::RoleName(actor.role)));
  }
  if (release::IsBlank(reason)) {
    return Fail(ErrorCode::kInvalidArgument,
                "reason: say why the outside CMDB will not get these results");
  }
  soci::session& sql = tx.sql();
  std::string key(release_id), by = actor.name, why(reason), waived(kOutboxWaived),
                               pending(kOutboxPending), failing(kOutboxFailing);
  long long outstanding = 0;
  sql << "SELECT COUNT(*) FROM cmdb_outbox WHERE release_id = :r AND state IN (:p, :f) AND "
         "connector NOT LIKE 'notify:%'",
      soci::use(key), soci::use(pending), soci::use(failing), soci::into(outstanding);
  if (outstanding == 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("release {} has no pending or failing CMDB delivery to waive (see "
                            "`fabu cmdb outbox`)",
                            release_id));
  }
  sql << "UPDATE cmdb_outbox SET state = :w, waived_by = :b, waive_reason = :y WHERE "
         "release_id = :r AND state IN (:p, :f) AND connector NOT LIKE 'notify:%'",
      soci::use(waived), soci::use(by), soci::use(why), soci::use(key), soci::use(pending),
      soci::use(failing);
  AuditEvent event("cmdb.waive", "release", key);
  event.release_id = key;
  event.detail = {{"waived", outstanding}, {"reason", why}};
  tx.Audit(event);
  return outstanding;
}

json OutboxMessage::ToJson() const {
  json payload_json = json::parse(payload, nullptr, false);
  return {{"id", id},
          {"connector", connector},
          {"idempotency_key", idempotency_key},
          {"release", release_id},
          {"state", state},
          {"attempts", attempts},
          {"next_attempt", (state == kOutboxPending || state == kOutboxFailing) && next_attempt > 0
                               ? TimeOrNull(next_attempt)
                               : json(nullptr)},
          {"last_error", last_error},
          {"created", created},
          {"delivered", delivered.empty() ? json(nullptr) : json(delivered)},
          {"payload", payload_json.is_discarded() ? json(payload) : payload_json}};
}

std::vector<OutboxMessage> ListOutbox(soci::session& sql, const OutboxFilter& filter) {
  std::string where = "1 = 1";
  std::string release = filter.release_id.value_or(""), state = filter.state.value_or("");
  if (filter.release_id) where += " AND release_id = :r";
  if (filter.state) where += " AND state = :s";
  long long limit = filter.limit;
  return cmdb_detail::Query<OutboxRow>(
      sql,
      fmt::format("SELECT {} FROM cmdb_outbox WHERE {} ORDER BY id DESC LIMIT :l", kOutboxColumns,
                  where),
      [&](soci::statement& st) {
        if (filter.release_id) st.exchange(soci::use(release, "r"));
        if (filter.state) st.exchange(soci::use(state, "s"));
        st.exchange(soci::use(limit, "l"));
      });
}

std::vector<OutboxMessage> OutboxHeads(soci::session& sql) {
  return cmdb_detail::Query<OutboxRow>(
      sql,
      // Every undelivered notice (they keep no order), and the oldest
      // undelivered message of every other connector.
      fmt::format("SELECT {} FROM cmdb_outbox WHERE state IN ('pending', 'failing') AND "
                  "(connector LIKE 'notify:%' OR id IN (SELECT MIN(id) FROM cmdb_outbox WHERE "
                  "state IN ('pending', 'failing') GROUP BY connector)) ORDER BY id",
                  kOutboxColumns),
      [](soci::statement&) {});
}

void MarkDelivered(Transaction& tx, std::int64_t id, const std::string& when) {
  long long key = id;
  std::string state(kOutboxDelivered), at = when;
  std::string connector, idempotency_key, release;
  tx.sql() << "SELECT connector, idempotency_key, release_id FROM cmdb_outbox WHERE id = :id",
      soci::use(key), soci::into(connector), soci::into(idempotency_key), soci::into(release);
  tx.sql() << "UPDATE cmdb_outbox SET state = :s, attempts = attempts + 1, delivered = :d, "
              "last_error = '' WHERE id = :id",
      soci::use(state), soci::use(at), soci::use(key);
  AuditEvent event("cmdb.deliver", "cmdb_outbox", std::to_string(id));
  event.release_id = release;
  event.detail = {{"connector", connector}, {"idempotency_key", idempotency_key}};
  tx.Audit(event);
}

void MarkFailed(Transaction& tx, std::int64_t id, const std::string& error,
                UnixSeconds next_attempt) {
  long long key = id, next = next_attempt;
  std::string state(kOutboxFailing), message = error.substr(0, 2000);
  tx.sql() << "UPDATE cmdb_outbox SET state = :s, attempts = attempts + 1, last_error = :e, "
              "next_attempt = :n WHERE id = :id",
      soci::use(state), soci::use(message), soci::use(next), soci::use(key);
}

void MarkGivenUp(Transaction& tx, std::int64_t id, const std::string& error) {
  long long key = id;
  std::string state(kOutboxGivenUp), message = error.substr(0, 2000);
  std::string connector, idempotency_key, release;
  long long attempts = 0;
  tx.sql() << "SELECT connector, idempotency_key, release_id, attempts FROM cmdb_outbox "
              "WHERE id = :id",
      soci::use(key), soci::into(connector), soci::into(idempotency_key), soci::into(release),
      soci::into(attempts);
  tx.sql() << "UPDATE cmdb_outbox SET state = :s, attempts = attempts + 1, last_error = :e "
              "WHERE id = :id",
      soci::use(state), soci::use(message), soci::use(key);
  AuditEvent event("notify.give-up", "cmdb_outbox", std::to_string(id));
  event.release_id = release;
  event.detail = {{"connector", connector},
                  {"idempotency_key", idempotency_key},
                  {"attempts", attempts + 1},
                  {"last_error", message}};
  tx.Audit(event);
}

void SyncConnectors(Transaction& tx, const std::vector<ConnectorName>& connectors) {
  soci::session& sql = tx.sql();
  const std::string now = tx.clock().Utc();
  sql << "UPDATE cmdb_connectors SET active = 0";
  for (const ConnectorName& c : connectors) {
    std::string name = c.name, type = c.type, at = now;
    long long exists = 0;
    sql << "SELECT COUNT(*) FROM cmdb_connectors WHERE name = :n", soci::use(name),
        soci::into(exists);
    if (exists > 0) {
      sql << "UPDATE cmdb_connectors SET type = :t, active = 1, updated = :u WHERE name = :n",
          soci::use(type), soci::use(at), soci::use(name);
    } else {
      sql << "INSERT INTO cmdb_connectors (name, type, active, updated) VALUES (:n, :t, 1, :u)",
          soci::use(name), soci::use(type), soci::use(at);
    }
  }
}

}  // namespace fabu::coordinator
