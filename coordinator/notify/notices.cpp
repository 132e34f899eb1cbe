#include "coordinator/notify/notices.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include <map>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/cmdb/outbox_signal.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/deploy/deployments.hpp"
#include "coordinator/deploy/rollout_engine.hpp"
#include "coordinator/hosts/hosts.hpp"
#include "coordinator/packages/package_store.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
namespace rel = release;

struct EventInfo {
  NoticeEvent event;
  std::string_view name;
};
constexpr EventInfo kEvents[] = {
    {NoticeEvent::kScheduled, "scheduled"}, {NoticeEvent::kStarted, "started"},
    {NoticeEvent::kPaused, "paused"},       {NoticeEvent::kRolledBack, "rolled_back"},
    {NoticeEvent::kCompleted, "completed"}, {NoticeEvent::kClosed, "closed"},
};

std::string JoinEvents(const std::vector<NoticeEvent>& events) {
  std::string out;
  for (NoticeEvent e : events) out += (out.empty() ? "" : ",") + std::string(NoticeEventName(e));
  return out;
}

// One mailbox, addr-spec only: no display name, spaces, brackets or line
// breaks (which would let a subscriber inject headers).
bool IsMailbox(std::string_view address) {
  const std::size_t at = address.find('@');
  if (at == 0 || at == std::string_view::npos || at + 1 >= address.size()) return false;
  if (address.find('@', at + 1) != std::string_view::npos) return false;
  for (char c : address) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '<' || c == '>' || c == ',' || c == ';' ||
        c == '"' || c == '(' || c == ')' || c == '\\' || c == 0x7f) {
      return false;
    }
  }
  return true;
}

std::string Indented(const std::string& text) {
  if (text.empty()) return "  (not given in the plan)\n";
  std::string out = "  ";
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
  return out + "\n";
}

NoticeSubscription FromRow(const soci::row& row) {
  NoticeSubscription s;
  s.id = row.get<std::string>(0);
  const std::string events = row.get<std::string>(1);
  std::size_t start = 0;
  while (start < events.size()) {
    std::size_t end = events.find(',', start);
    if (end == std::string::npos) end = events.size();
    if (auto e = ParseNoticeEvent(events.substr(start, end - start))) s.events.push_back(*e);
    start = end + 1;
  }
  s.channel = row.get<std::string>(2);
  s.target = row.get<std::string>(3);
  s.secret = row.get<std::string>(4);
  s.time_zone = row.get<std::string>(5);
  s.created = row.get<std::string>(6);
  s.created_by = row.get<std::string>(7);
  s.removed = row.get<std::string>(8);
  // A value this coordinator does not know reads as English.
  s.lang = rel::ParseLang(row.get<std::string>(9)).value_or(rel::Lang::kEn);
  return s;
}

constexpr const char* kColumns =
    "id, events, channel, target, secret, time_zone, created, created_by, removed, lang";

NoticeFacts FactsOf(soci::session& sql, const rel::Release& r) {
  NoticeFacts facts;
  for (const std::string& id : r.plan.packages) {
    auto p = FindPackage(sql, id);
    facts.packages.push_back(
        p ? fmt::format("{} {} (sha256 {})", p->name, p->version, id.substr(0, 12))
          : fmt::format("sha256 {}", id));
  }
  std::vector<std::string> targets = RolloutTargets(sql, r.id);
  if (targets.empty()) {
    LabelSelector selector;
    if (r.plan.targets) selector = r.plan.targets->labels;
    selector.emplace_back("env", std::string(kProductionEnvironment));
    facts.target_hosts = MatchingHosts(sql, selector).size();
  } else {
    facts.target_hosts = targets.size();
  }
  std::map<std::string, DeploymentRecord> install, rollback;
  for (DeploymentRecord& d : ListDeployments(sql, r.id)) {  // by host, attempt
    if (d.environment != kProductionEnvironment) continue;
    auto& into = d.kind == protocol::DeploymentKind::kInstall ? install : rollback;
    into.insert_or_assign(d.host, std::move(d));
  }
  for (const auto& [host, d] : install) {
    if (!d.IsFinal()) {
      ++facts.unfinished;
    } else if (d.Succeeded()) {
      ++facts.succeeded;
    } else {
      ++facts.failed;
    }
  }
  for (const auto& [host, d] : rollback) {
    if (d.Succeeded()) ++facts.rolled_back;
  }
  return facts;
}

// A plan section's text indented under its heading, in Chinese.
std::string IndentedZh(const std::string& text) {
  return text.empty() ? std::string("  （发布方案中未填写）\n") : Indented(text);
}

std::string_view SectionTitleZh(rel::PlanSection section) {
  for (const rel::PlanSectionInfo& info : rel::PlanSections()) {
    if (info.section == section) return info.title_zh;
  }
  return "";
}

// ComposeNotice in the procedure's Chinese (procedure §6.2.6 上线通知): the
// same parts as the English one, its terms from record_render.cpp's table.
Notice ComposeNoticeZh(NoticeEvent event, const rel::Release& r, const NoticeFacts& facts,
                       const rel::TimeZone& zone) {
  constexpr rel::Lang kZh = rel::Lang::kZhCn;
  const rel::ReleasePlan& plan = r.plan;
  const std::string what =
      fmt::format("{} {}《{}》", plan.product, plan.version.ToString(), plan.title);
  const rel::HistoryEntry last = r.history.empty() ? rel::HistoryEntry{} : r.history.back();
  Notice notice;
  std::string& t = notice.text;
  if (event == NoticeEvent::kScheduled || event == NoticeEvent::kStarted) {
    notice.subject = event == NoticeEvent::kScheduled
                         ? fmt::format("[fabu] 上线通知：{} {} 已排期（{}）", plan.product,
                                       plan.version.ToString(), r.id)
                         : fmt::format("[fabu] 上线通知：{} {} 开始上线（{}）", plan.product,
                                       plan.version.ToString(), r.id);
    t += event == NoticeEvent::kScheduled ? fmt::format("发布 {} 已排期上线。\n\n", r.id)
                                          : fmt::format("发布 {} 已开始上线。\n\n", r.id);
    t += fmt::format("发布内容\n  {}\n", what);
    for (const std::string& p : facts.packages) t += fmt::format("  软件包 {}\n", p);
    t += "\n发布窗口\n";
    if (auto window = r.ActiveWindow()) {
      t += fmt::format("  {} 至 {}（{}）\n", zone.FormatLocal(window->start.seconds),
                       zone.FormatLocal(window->end.seconds), zone.name());
    } else {
      t += "  未设定发布窗口\n";
    }
    t += fmt::format("\n{}\n", SectionTitleZh(rel::PlanSection::kScope)) +
         IndentedZh(plan.Section(rel::PlanSection::kScope));
    t += fmt::format("  目标主机 {} 台\n", facts.target_hosts);
    t += fmt::format("\n{}\n", SectionTitleZh(rel::PlanSection::kRollbackPlan)) +
         IndentedZh(plan.Section(rel::PlanSection::kRollbackPlan));
    t += fmt::format("\n联系人\n  {}：{}\n", rel::Label(kZh, "owner"), r.owner);
    t += fmt::format("  {}：\n", SectionTitleZh(rel::PlanSection::kParticipants)) +
         IndentedZh(plan.Section(rel::PlanSection::kParticipants));
  } else {
    std::string happened;
    switch (event) {
      case NoticeEvent::kPaused:
        happened = "上线已暂停";
        break;
      case NoticeEvent::kRolledBack:
        happened = rel::Term(kZh, rel::TermKind::kState, "rolled_back");
        break;
      case NoticeEvent::kCompleted:
        happened = fmt::format(
            "上线结束：{}", rel::Term(kZh, rel::TermKind::kState, rel::ReleaseStateName(r.state)));
        break;
      default:
        happened = rel::Term(kZh, rel::TermKind::kState, "closed");
        if (r.close_code) {
          happened += fmt::format(
              "（{}：{}）", rel::Label(kZh, "close_code"),
              rel::Term(kZh, rel::TermKind::kCloseCode, rel::CloseCodeName(*r.close_code)));
        }
        break;
    }
    notice.subject =
        fmt::format("[fabu] {} {} {}（{}）", plan.product, plan.version.ToString(), happened, r.id);
    t += fmt::format("发布 {}：{}。\n\n", r.id, happened);
    t += fmt::format("发布内容\n  {}\n", what);
    t += fmt::format("\n状态\n  {} → {}，操作人 {}，时间 {}（{}）\n",
                     rel::Term(kZh, rel::TermKind::kState, rel::ReleaseStateName(last.from)),
                     rel::Term(kZh, rel::TermKind::kState, rel::ReleaseStateName(last.to)),
                     last.actor, zone.FormatLocal(last.at), zone.name());
    if (!last.note.empty()) t += "  说明：\n" + Indented(last.note);
    t += fmt::format("\n主机\n  目标主机 {} 台：成功 {}，失败 {}，未完成 {}", facts.target_hosts,
                     facts.succeeded, facts.failed, facts.unfinished);
    t += facts.rolled_back > 0 ? fmt::format("，已回退 {}\n", facts.rolled_back) : "\n";
    t += fmt::format("\n联系人\n  {}：{}\n", rel::Label(kZh, "owner"), r.owner);
  }
  t += "\n-- \nfabu 发布通知；详见 `fabu release show " + r.id + "`。\n";
  return notice;
}

}  // namespace

std::string_view NoticeEventName(NoticeEvent event) {
  for (const EventInfo& info : kEvents) {
    if (info.event == event) return info.name;
  }
  return "unknown";
}

Result<NoticeEvent> ParseNoticeEvent(std::string_view name) {
  for (const EventInfo& info : kEvents) {
    if (info.name == name) return info.event;
  }
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("\"{}\" is not an event: use scheduled, started, paused, rolled_back, "
                          "completed or closed",
                          name));
}

const std::vector<NoticeEvent>& AllNoticeEvents() {
  static const std::vector<NoticeEvent> kAll = {NoticeEvent::kScheduled, NoticeEvent::kStarted,
                                                NoticeEvent::kPaused,    NoticeEvent::kRolledBack,
                                                NoticeEvent::kCompleted, NoticeEvent::kClosed};
  return kAll;
}

std::optional<NoticeEvent> NoticeEventOf(const rel::Release& before, const rel::Release& after) {
  if (after.history.size() <= before.history.size() || after.history.empty()) {
    return std::nullopt;
  }
  switch (after.history.back().action) {
    case rel::Action::kSchedule:
      return NoticeEvent::kScheduled;
    case rel::Action::kStartRollout:
      return NoticeEvent::kStarted;
    case rel::Action::kPause:
      return NoticeEvent::kPaused;
    case rel::Action::kFinishRollback:
      return NoticeEvent::kRolledBack;
    case rel::Action::kFinishRollout:
    case rel::Action::kFailRollout:
      return NoticeEvent::kCompleted;
    case rel::Action::kClose:
      return NoticeEvent::kClosed;
    default:
      return std::nullopt;
  }
}

bool NoticeSubscription::Wants(NoticeEvent event) const {
  for (NoticeEvent e : events) {
    if (e == event) return true;
  }
  return false;
}

json NoticeSubscription::ToJson() const {
  json names = json::array();
  for (NoticeEvent e : events) names.push_back(NoticeEventName(e));
  return {{"id", id},
          {"events", names},
          {"channel", channel},
          {"target", target},
          {"signed", !secret.empty()},
          {"time_zone", time_zone},
          {"lang", rel::LangTag(lang)},
          {"created", created},
          {"created_by", created_by},
          {"removed", removed}};
}

Notice ComposeNotice(NoticeEvent event, const rel::Release& r, const NoticeFacts& facts,
                     const rel::TimeZone& zone, rel::Lang lang) {
  if (lang == rel::Lang::kZhCn) return ComposeNoticeZh(event, r, facts, zone);
  const rel::ReleasePlan& plan = r.plan;
  const std::string what =
      fmt::format("{} {} \"{}\"", plan.product, plan.version.ToString(), plan.title);
  const rel::HistoryEntry last = r.history.empty() ? rel::HistoryEntry{} : r.history.back();
  Notice notice;
  std::string& t = notice.text;
  if (event == NoticeEvent::kScheduled || event == NoticeEvent::kStarted) {
    notice.subject = event == NoticeEvent::kScheduled
                         ? fmt::format("[fabu] Go-live notice: {} {} scheduled ({})", plan.product,
                                       plan.version.ToString(), r.id)
                         : fmt::format("[fabu] Go-live: {} {} rollout started ({})", plan.product,
                                       plan.version.ToString(), r.id);
    t += event == NoticeEvent::kScheduled
             ? fmt::format("Release {} is scheduled to go live.\n\n", r.id)
             : fmt::format("The rollout of release {} has started.\n\n", r.id);
    t += fmt::format("What is released\n  {}\n", what);
    for (const std::string& p : facts.packages) t += fmt::format("  package {}\n", p);
    t += "\nWhen\n";
    if (auto window = r.ActiveWindow()) {
      t += fmt::format("  {} to {} ({})\n", zone.FormatLocal(window->start.seconds),
                       zone.FormatLocal(window->end.seconds), zone.name());
    } else {
      t += "  no maintenance window is set\n";
    }
    t += "\nImpact scope\n" + Indented(plan.Section(rel::PlanSection::kScope));
    t += fmt::format("  {} target host(s)\n", facts.target_hosts);
    t += "\nRollback plan\n" + Indented(plan.Section(rel::PlanSection::kRollbackPlan));
    t += fmt::format("\nContact\n  owner: {}\n", r.owner);
    t += "  participants:\n" + Indented(plan.Section(rel::PlanSection::kParticipants));
  } else {
    std::string happened;
    switch (event) {
      case NoticeEvent::kPaused:
        happened = "rollout paused";
        break;
      case NoticeEvent::kRolledBack:
        happened = "rolled back";
        break;
      case NoticeEvent::kCompleted:
        happened = r.state == rel::ReleaseState::kDeployed
                       ? "rollout completed: deployed"
                       : fmt::format("rollout completed: {}", rel::ReleaseStateName(r.state));
        break;
      default:
        happened = r.close_code ? fmt::format("closed ({})", rel::CloseCodeName(*r.close_code))
                                : std::string("closed");
        break;
    }
    notice.subject =
        fmt::format("[fabu] {} {} {} ({})", plan.product, plan.version.ToString(), happened, r.id);
    t += fmt::format("Release {}: {}.\n\n", r.id, happened);
    t += fmt::format("What\n  {}\n", what);
    t += fmt::format("\nState\n  {} -> {} by {} at {} ({})\n", rel::ReleaseStateName(last.from),
                     rel::ReleaseStateName(last.to), last.actor, zone.FormatLocal(last.at),
                     zone.name());
    if (!last.note.empty()) t += "  note:\n" + Indented(last.note);
    t += fmt::format("\nHosts\n  {} target(s): {} succeeded, {} failed, {} unfinished",
                     facts.target_hosts, facts.succeeded, facts.failed, facts.unfinished);
    t += facts.rolled_back > 0 ? fmt::format(", {} rolled back\n", facts.rolled_back) : "\n";
    t += fmt::format("\nContact\n  owner: {}\n", r.owner);
  }
  t += "\n-- \nfabu release notice; see `fabu release show " + r.id + "`.\n";
  return notice;
}

std::string SubscriptionSecretContext(std::string_view id) {
  return fmt::format("notify_subscriptions/{}/secret", id);
}

Result<NoticeSubscription> AddSubscription(Transaction& tx, NoticeSubscription s,
                                           std::string_view actor, const SecretBox& secrets) {
  if (s.events.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "events: name at least one of scheduled, started, paused, rolled_back, "
                "completed, closed");
  }
  if (s.channel == kChannelWebhook) {
    if (!s.target.starts_with("http://") && !s.target.starts_with("https://")) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("webhook: \"{}\" is not an http:// or https:// URL", s.target));
    }
  } else if (s.channel == kChannelEmail) {
    if (!IsMailbox(s.target)) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("email: \"{}\" is not one address like ops@example.com", s.target));
    }
    if (!s.secret.empty()) {
      return Fail(ErrorCode::kInvalidArgument, "secret: only a webhook is signed");
    }
  } else {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("channel: \"{}\" must be webhook or email", s.channel));
  }
  if (auto zone = rel::TimeZone::Load(s.time_zone); !zone) {
    return std::unexpected(zone.error().WithContext("time_zone"));
  }
  soci::session& sql = tx.sql();
  long long seq = 0;
  soci::indicator ind = soci::i_null;
  sql << "SELECT MAX(seq) FROM notify_subscriptions", soci::into(seq, ind);
  seq = (ind == soci::i_ok ? seq : 0) + 1;
  s.id = fmt::format("N-{}", seq);
  s.created = tx.clock().Utc();
  s.created_by = std::string(actor);
  s.removed.clear();
  auto sealed = secrets.Seal(s.secret, SubscriptionSecretContext(s.id));
  if (!sealed) return std::unexpected(sealed.error());
  s.secret = std::move(*sealed);
  const std::string events = JoinEvents(s.events);
  const std::string lang(rel::LangTag(s.lang));
  sql << "INSERT INTO notify_subscriptions (id, seq, events, channel, target, secret, time_zone, "
         "created, created_by, removed, lang) VALUES (:id, :seq, :ev, :ch, :t, :s, :tz, :c, :cb, "
         "'', :l)",
      soci::use(s.id), soci::use(seq), soci::use(events), soci::use(s.channel), soci::use(s.target),
      soci::use(s.secret), soci::use(s.time_zone), soci::use(s.created), soci::use(s.created_by),
      soci::use(lang);
  AuditEvent event("notify.add", "notify_subscription", s.id);
  event.after = s.ToJson();
  tx.Audit(event);
  return s;
}

Result<int> SealClearSubscriptionSecrets(Transaction& tx, const SecretBox& secrets) {
  soci::session& sql = tx.sql();
  std::vector<std::pair<std::string, std::string>> clear;
  soci::rowset<soci::row> rows =
      (sql.prepare
       << "SELECT id, secret FROM notify_subscriptions WHERE secret <> '' ORDER BY seq");
  for (const soci::row& row : rows) {
    std::string secret = row.get<std::string>(1);
    if (!SecretBox::IsSealed(secret))
      clear.emplace_back(row.get<std::string>(0), std::move(secret));
  }
  for (auto& [id, secret] : clear) {
    auto sealed = secrets.Seal(secret, SubscriptionSecretContext(id));
    if (!sealed) return std::unexpected(sealed.error());
    sql << "UPDATE notify_subscriptions SET secret = :s WHERE id = :id", soci::use(*sealed),
        soci::use(id);
  }
  return static_cast<int>(clear.size());
}

bool AnySealedSubscriptionSecret(soci::session& sql) {
  long long n = 0;
  const std::string pattern = std::string(SecretBox::kPrefix) + "%";
  sql << "SELECT COUNT(*) FROM notify_subscriptions WHERE secret LIKE :p", soci::use(pattern),
      soci::into(n);
  return n > 0;
}

std::vector<NoticeSubscription> ListSubscriptions(soci::session& sql) {
  std::vector<NoticeSubscription> out;
  soci::rowset<soci::row> rows =
      (sql.prepare << "SELECT " << kColumns
                   << " FROM notify_subscriptions WHERE removed = '' ORDER BY seq");
  for (const soci::row& row : rows) out.push_back(FromRow(row));
  return out;
}

Result<NoticeSubscription> FindSubscription(soci::session& sql, std::string_view id) {
  std::string key(id);
  soci::rowset<soci::row> rows =
      (sql.prepare << "SELECT " << kColumns << " FROM notify_subscriptions WHERE id = :id",
       soci::use(key));
  for (const soci::row& row : rows) return FromRow(row);
  return Fail(ErrorCode::kNotFound,
              fmt::format("no notice subscription {} (see `fabu notify list`)", id));
}

Result<void> RemoveSubscription(Transaction& tx, std::string_view id, std::string_view actor) {
  auto found = FindSubscription(tx.sql(), id);
  if (!found) return std::unexpected(found.error());
  if (!found->removed.empty()) {
    return Fail(
        ErrorCode::kNotFound,
        fmt::format("notice subscription {} was already removed at {}", id, found->removed));
  }
  const std::string key(id), now = tx.clock().Utc(), connector = found->ConnectorName(),
                             waived(kOutboxWaived), pending(kOutboxPending),
                             failing(kOutboxFailing), by(actor), why("notice subscription removed");
  tx.sql() << "UPDATE notify_subscriptions SET removed = :r WHERE id = :id", soci::use(now),
      soci::use(key);
  // Its undelivered notices have nowhere to go now.
  tx.sql() << "UPDATE cmdb_outbox SET state = :w, waived_by = :b, waive_reason = :y WHERE "
              "connector = :c AND state IN (:p, :f)",
      soci::use(waived), soci::use(by), soci::use(why), soci::use(connector), soci::use(pending),
      soci::use(failing);
  AuditEvent event("notify.remove", "notify_subscription", key);
  event.before = found->ToJson();
  tx.Audit(event);
  return {};
}

void EnqueueNotices(Transaction& tx, const rel::Release& before, const rel::Release& after) {
  const auto event = NoticeEventOf(before, after);
  if (!event) return;
  soci::session& sql = tx.sql();
  std::vector<NoticeSubscription> subscribers;
  for (NoticeSubscription& s : ListSubscriptions(sql)) {
    if (s.Wants(*event)) subscribers.push_back(std::move(s));
  }
  if (subscribers.empty()) return;
  const NoticeFacts facts = FactsOf(sql, after);
  const std::string key =
      fmt::format("{}/{}/{}", after.id, NoticeEventName(*event), after.history.size());
  std::size_t queued = 0;
  for (const NoticeSubscription& s : subscribers) {
    auto zone = rel::TimeZone::Load(s.time_zone);
    const Notice notice =
        ComposeNotice(*event, after, facts, zone ? *zone : rel::TimeZone::Utc(), s.lang);
    json payload = {{"event", NoticeEventName(*event)},
                    {"idempotency_key", key},
                    {"subscription", s.id},
                    {"release", after.id},
                    {"product", after.plan.product},
                    {"version", after.plan.version.ToString()},
                    {"title", after.plan.title},
                    {"state", rel::ReleaseStateName(after.state)},
                    {"time_zone", s.time_zone},
                    {"lang", rel::LangTag(s.lang)},
                    {"target_hosts", facts.target_hosts},
                    {"hosts",
                     {{"succeeded", facts.succeeded},
                      {"failed", facts.failed},
                      {"unfinished", facts.unfinished},
                      {"rolled_back", facts.rolled_back}}},
                    {"subject", notice.subject},
                    {"text", notice.text}};
    if (auto window = after.ActiveWindow()) {
      payload["window"] = {{"start", rel::FormatRfc3339Utc(window->start.seconds)},
                           {"end", rel::FormatRfc3339Utc(window->end.seconds)}};
    }
    if (EnqueueOutboxMessage(tx, s.ConnectorName(), key, after.id, payload.dump())) ++queued;
  }
  AuditEvent audit("notify.queue", "release", after.id);
  audit.release_id = after.id;
  audit.detail = {{"event", NoticeEventName(*event)}, {"idempotency_key", key}, {"queued", queued}};
  tx.Audit(audit);
  if (queued > 0) tx.AfterCommit(RingOutbox);
}

}  // namespace fabu::coordinator
