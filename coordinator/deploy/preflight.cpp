#include "coordinator/deploy/preflight.hpp"

#include <fmt/format.h>

#include <unordered_map>

#include "coordinator/audit/audit_log.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/store/dialect.hpp"
#include "coordinator/store/row_query.hpp"
#include "packaging/manifest.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {
namespace {

using json = nlohmann::json;

long long LatestRound(soci::session& sql, const std::string& release_id) {
  long long round = 0;
  soci::indicator ind = soci::i_ok;
  sql << "SELECT MAX(round) FROM preflight_rounds WHERE release_id = :r", soci::use(release_id),
      soci::into(round, ind);
  return ind == soci::i_ok ? round : 0;
}

struct OpenPreflightStatement {
  explicit OpenPreflightStatement(soci::session& sql) : st(sql) {
    st.exchange(soci::into(request));
    st.exchange(soci::use(host, "h"));
    st.exchange(soci::use(since, "s"));
    st.alloc();
    // Only a release's latest round is asked: an older one still open was
    // replaced by it.
    st.prepare(
        "SELECT r.request FROM preflight_hosts h JOIN preflight_rounds r ON "
        "r.release_id = h.release_id AND r.round = h.round WHERE h.host = :h AND "
        "h.answered = 0 AND r.asked >= :s AND r.round = (SELECT MAX(l.round) FROM "
        "preflight_rounds l WHERE l.release_id = r.release_id) ORDER BY r.asked LIMIT 1");
    st.define_and_bind();
  }
  std::string request;
  std::string host;
  long long since = 0;
  soci::statement st;
};

// The same for many hosts, the hosts a JSON array of {"h": ...}, each
// host's oldest first.
struct OpenPreflightsStatement {
  explicit OpenPreflightsStatement(soci::session& sql) : st(sql) {
    static constexpr JsonColumn kHosts[] = {{"h"}};
    st.exchange(soci::into(host));
    st.exchange(soci::into(request));
    st.exchange(soci::use(hosts, "hosts"));
    st.exchange(soci::use(since, "s"));
    st.alloc();
    st.prepare(fmt::format(
        "SELECT h.host, r.request FROM preflight_hosts h JOIN preflight_rounds r ON "
        "r.release_id = h.release_id AND r.round = h.round WHERE h.host IN (SELECT l.h FROM {}) "
        "AND h.answered = 0 AND r.asked >= :s AND r.round = (SELECT MAX(m.round) FROM "
        "preflight_rounds m WHERE m.release_id = r.release_id) ORDER BY h.host, r.asked",
        JsonRowsSql(BackendOf(sql), "hosts", kHosts, "l")));
    st.define_and_bind();
  }
  std::string host, request;
  std::string hosts;
  long long since = 0;
  soci::statement st;
};

std::optional<protocol::PreflightRequest> ParseRequest(const std::string& text) {
  const json parsed = json::parse(text, nullptr, false);
  if (auto request = protocol::PreflightRequestFromJson(parsed)) return std::move(*request);
  return std::nullopt;
}

std::string RoundId(const std::string& release_id, long long round) {
  return fmt::format("{}#{}", release_id, round);
}

}  // namespace

Result<long long> AskPreflight(Transaction& tx, const release::Release& release,
                               const StoredPackage& package, const std::vector<std::string>& hosts,
                               UnixSeconds now, const std::string& actor, Wakeups& wakeups) {
  auto manifest = packaging::Manifest::Parse(package.manifest);
  if (!manifest) {
    return std::unexpected(manifest.error().WithContext(
        fmt::format("release {}: the manifest of package {}", release.id, package.id)));
  }
  soci::session& sql = tx.sql();
  long long round = LatestRound(sql, release.id) + 1;
  protocol::PreflightRequest request;
  request.id = RoundId(release.id, round);
  request.release = release.id;
  request.app = manifest->name;
  request.version = manifest->version.ToString();
  request.package_id = package.id;
  request.package_size = package.size;
  request.unpacked_size = manifest->TotalFileBytes();
  request.key_id = manifest->key_id;
  request.targets = manifest->targets;
  std::string key = release.id, by = actor, empty,
              text = protocol::PreflightRequestToJson(request).dump();
  long long asked = now, zero = 0;
  sql << "INSERT INTO preflight_rounds (release_id, round, asked, asked_by, override_by, "
         "override_reason, override_at, request) VALUES (:r, :n, :a, :b, :ob, :or, :oa, :q)",
      soci::use(key), soci::use(round), soci::use(asked), soci::use(by), soci::use(empty),
      soci::use(empty), soci::use(zero), soci::use(text);
  std::string host, no_reasons = "[]";
  long long pending = -1;
  soci::statement insert =
      (sql.prepare << "INSERT INTO preflight_hosts (release_id, round, host, answered, ready, "
                      "reasons, free_bytes, installed_version) VALUES (:r, :n, :h, :a, :y, :rs, "
                      ":f, :v)",
       soci::use(key), soci::use(round), soci::use(host), soci::use(zero), soci::use(pending),
       soci::use(no_reasons), soci::use(zero), soci::use(empty));
  for (const std::string& h : hosts) {
    host = h;
    insert.execute(true);
    wakeups.hosts.push_back(h);
  }
  AuditEvent event("release.preflight", "release", release.id);
  event.release_id = release.id;
  event.detail = {{"round", round},
                  {"hosts", hosts.size()},
                  {"version", request.version},
                  {"package", package.id}};
  tx.Audit(event);
  return round;
}

Result<long long> AskPreflightOfTargets(Transaction& tx, const release::Release& release,
                                        UnixSeconds now, const std::string& actor,
                                        Wakeups& wakeups) {
  if (release.plan.packages.empty()) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("release {} names no package to pre-flight", release.id));
  }
  auto package = FindPackage(tx.sql(), release.plan.packages.front());
  if (!package) return std::unexpected(package.error());
  LabelSelector selector;
  if (release.plan.targets) selector = release.plan.targets->labels;
  selector.emplace_back("env", std::string(kProductionEnvironment));
  std::vector<std::string> hosts;
  for (const MatchingHost& host : MatchingHosts(tx.sql(), selector)) hosts.push_back(host.name);
  if (hosts.empty()) return 0;
  return AskPreflight(tx, release, *package, hosts, now, actor, wakeups);
}

std::vector<std::optional<protocol::PreflightRequest>> OpenPreflights(
    soci::session& sql, StatementCache& statements, std::span<const std::string> hosts,
    UnixSeconds now) {
  std::vector<std::optional<protocol::PreflightRequest>> found(hosts.size());
  if (hosts.size() == 1) {
    OpenPreflightStatement& open = statements.Get<OpenPreflightStatement>(sql);
    open.host = hosts.front();
    open.since = now - kPreflightAnswerSeconds;
    open.st.execute(true);
    if (open.st.got_data()) found.front() = ParseRequest(open.request);
    StatementCache::Finish(open.st);
    return found;
  }
  if (hosts.empty()) return found;
  OpenPreflightsStatement& open = statements.Get<OpenPreflightsStatement>(sql);
  open.hosts = JsonRowsOf(hosts, "h");
  open.since = now - kPreflightAnswerSeconds;
  open.st.execute(false);
  std::unordered_map<std::string, std::string> oldest;
  while (open.st.fetch()) oldest.try_emplace(open.host, open.request);
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    if (auto it = oldest.find(hosts[i]); it != oldest.end()) found[i] = ParseRequest(it->second);
  }
  return found;
}

Result<void> RecordPreflightAnswer(Transaction& tx, const std::string& host,
                                   const protocol::PreflightAnswer& answer, UnixSeconds now) {
  soci::session& sql = tx.sql();
  const auto hash = answer.id.rfind('#');
  long long round = 0;
  try {
    if (hash == std::string::npos) throw std::invalid_argument("no #");
    round = std::stoll(answer.id.substr(hash + 1));
  } catch (const std::exception&) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("id: \"{}\" is not a pre-flight question's id", answer.id));
  }
  std::string release_id = answer.id.substr(0, hash), who = host;
  if (LatestRound(sql, release_id) != round) {
    return Fail(ErrorCode::kNotFound, fmt::format("pre-flight {} is not the latest of release {}",
                                                  answer.id, release_id));
  }
  long long answered = -1;
  soci::indicator ind = soci::i_ok;
  sql << "SELECT answered FROM preflight_hosts WHERE release_id = :r AND round = :n AND host = :h",
      soci::use(release_id), soci::use(round), soci::use(who), soci::into(answered, ind);
  if (!sql.got_data()) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("host {} was not asked pre-flight {}", host, answer.id));
  }
  if (answered != 0) return {};  // the first answer stands
  long long at = now, ready = answer.ready ? 1 : 0,
            free = static_cast<long long>(answer.free_bytes);
  std::string reasons = json(answer.reasons).dump(), installed = answer.installed_version;
  sql << "UPDATE preflight_hosts SET answered = :a, ready = :y, reasons = :rs, free_bytes = :f, "
         "installed_version = :v WHERE release_id = :r AND round = :n AND host = :h",
      soci::use(at), soci::use(ready), soci::use(reasons), soci::use(free), soci::use(installed),
      soci::use(release_id), soci::use(round), soci::use(who);
  return {};
}

json PreflightStatus(soci::session& sql, const std::string& release_id, UnixSeconds now,
                     std::optional<std::size_t> host_limit) {
  const long long round = LatestRound(sql, release_id);
  if (round == 0) return nullptr;
  long long asked = 0, override_at = 0;
  std::string asked_by, override_by, override_reason;
  sql << "SELECT asked, asked_by, override_by, override_reason, override_at FROM preflight_rounds "
         "WHERE release_id = :r AND round = :n",
      soci::use(release_id), soci::use(round), soci::into(asked), soci::into(asked_by),
      soci::into(override_by), soci::into(override_reason), soci::into(override_at);
  // Each host's answer as read; its JSON is made only for the hosts shown
  // (a round of 20,000 hosts is counted whole and shown a page at a time).
  enum Rank { kWouldFail, kUnknown, kWaiting, kReady };
  struct Answer {
    std::string host, reasons, installed;
    long long answered = 0, free = 0;
    Rank rank = kWaiting;
  };
  std::vector<Answer> answers;
  std::size_t counts[4] = {0, 0, 0, 0};
  Answer a;
  long long ready = 0;
  soci::statement st = OneShot(
      sql,
      "SELECT host, answered, ready, reasons, free_bytes, installed_version FROM "
      "preflight_hosts WHERE release_id = :r AND round = :n ORDER BY host",
      soci::use(release_id), soci::use(round), soci::into(a.host), soci::into(a.answered),
      soci::into(ready), soci::into(a.reasons), soci::into(a.free), soci::into(a.installed));
  st.execute();
  while (st.fetch()) {
    if (a.answered != 0) {
      a.rank = ready != 0 ? kReady : kWouldFail;
    } else if (now - asked > kPreflightAnswerSeconds) {
      a.rank = kUnknown;
    } else {
      a.rank = kWaiting;
    }
    ++counts[a.rank];
    answers.push_back(a);
  }
  const std::size_t total = answers.size();
  if (host_limit) {
    std::stable_sort(answers.begin(), answers.end(),
                     [](const Answer& x, const Answer& y) { return x.rank < y.rank; });
    if (answers.size() > *host_limit) answers.resize(*host_limit);
  }
  json hosts = json::array();
  for (const Answer& answer : answers) {
    static constexpr const char* kStates[] = {"would_fail", "unknown", "waiting", "ready"};
    json why = json::parse(answer.reasons, nullptr, false);
    if (!why.is_array()) why = json::array();
    if (answer.rank == kUnknown) {
      why = json::array({fmt::format("did not answer within {} s (agent down or not polling)",
                                     kPreflightAnswerSeconds)});
    }
    json entry = {{"host", answer.host}, {"state", kStates[answer.rank]}, {"reasons", why}};
    if (answer.answered != 0) {
      entry["free_bytes"] = answer.free;
      entry["installed_version"] = answer.installed;
      entry["answered"] = protocol::FormatRfc3339Utc(answer.answered);
    }
    hosts.push_back(std::move(entry));
  }
  json override_json = nullptr;
  if (!override_by.empty()) {
    override_json = {{"by", override_by},
                     {"reason", override_reason},
                     {"at", protocol::FormatRfc3339Utc(override_at)}};
  }
  json out = {{"round", round},
              {"id", RoundId(release_id, round)},
              {"asked", protocol::FormatRfc3339Utc(asked)},
              {"asked_by", asked_by},
              {"override", override_json},
              {"hosts", std::move(hosts)},
              {"ready", counts[kReady]},
              {"would_fail", counts[kWouldFail]},
              {"unknown", counts[kUnknown]},
              {"waiting", counts[kWaiting]}};
  if (host_limit) out["hosts_total"] = total;
  return out;
}

Result<void> CheckPreflightAllowsStart(soci::session& sql, const std::string& release_id,
                                       UnixSeconds now) {
  // The first five hosts are those that would fail, if any; the count is
  // the round's.
  constexpr std::size_t kNamed = 5;
  const json status = PreflightStatus(sql, release_id, now, kNamed);
  if (status.is_null() || !status["override"].is_null()) return {};
  const std::size_t count = status.value("would_fail", std::size_t{0});
  if (count == 0) return {};
  std::string failing;
  for (const json& h : status["hosts"]) {
    if (h.value("state", "") != "would_fail") break;
    std::string reasons;
    for (const json& r : h["reasons"]) {
      reasons += (reasons.empty() ? "" : "; ") + r.get<std::string>();
    }
    failing += fmt::format("{}{} ({})", failing.empty() ? "" : ", ", h.value("host", ""), reasons);
  }
  return Fail(ErrorCode::kFailedPrecondition,
              fmt::format("cannot start release {}: pre-flight {} says {} production target(s) "
                          "would fail: {}{}; fix them and run `fabu release preflight {}` again, "
                          "or an approver overrides with `fabu release preflight {} --override "
                          "--reason ...`",
                          release_id, status.value("id", ""), count, failing,
                          count > kNamed ? ", ..." : "", release_id, release_id));
}

Result<void> OverridePreflight(Transaction& tx, const std::string& release_id,
                               const std::string& actor, const std::string& reason,
                               UnixSeconds now) {
  soci::session& sql = tx.sql();
  long long round = LatestRound(sql, release_id);
  if (round == 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("release {} has had no pre-flight to override", release_id));
  }
  if (reason.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "reason: an override says why");
  }
  std::string key = release_id, by = actor, why = reason;
  long long at = now;
  sql << "UPDATE preflight_rounds SET override_by = :b, override_reason = :w, override_at = :a "
         "WHERE release_id = :r AND round = :n",
      soci::use(by), soci::use(why), soci::use(at), soci::use(key), soci::use(round);
  AuditEvent event("release.preflight-override", "release", release_id);
  event.release_id = release_id;
  event.detail = {{"round", round}, {"reason", reason}};
  tx.Audit(event);
  return {};
}

}  // namespace fabu::coordinator
