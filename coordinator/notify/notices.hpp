// Release notices (procedure §6.2.6 go-live notice):
// people and systems subscribe to events of every release's rollout and
// get a message — a signed JSON webhook or a plain-text e-mail — when one
// happens.
//
// Events and the transitions they follow:
//   scheduled    schedule
//   started      start-rollout
//   paused       pause
//   rolled_back  finish-rollback
//   completed    finish-rollout (deployed) and fail-rollout (failed)
//   closed       close
// Each subscription has a language (en by default, or zh-CN) its notices
// are written in.
// The scheduled and started notices are the go-live notice: what is
// released (product, version, title, packages), when (the window in the
// subscription's time zone), the impact scope and number of target hosts,
// the rollback plan and whom to contact. The others say what happened,
// with the state and host counts.
//
// Delivery reuses the CMDB outbox (cmdb.hpp, delivery.hpp): EnqueueNotices
// runs in the transaction that saves the transition and queues one message
// per subscription to the event, on connector "notify:<subscription id>",
// with idempotency key "<release>/<event>/<history entry>" — one per
// release, event occurrence and subscription, so a repeated transaction
// queues nothing twice. The text is composed when queued, so what goes out
// is what was true at the transition. Notice messages do not count toward
// a release's CMDB confirmation and are not waived with it.
//
// A subscription removed is kept as a removed row (its id is never
// reused); its outstanding messages are waived.
//
// Functions take the session or Transaction the caller holds; mutations
// audit in the same transaction. Thread safety is the Store's.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/common/secret_box.hpp"
#include "coordinator/release/record_render.hpp"
#include "coordinator/release/time_zone.hpp"
#include "coordinator/release/workflow.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

enum class NoticeEvent { kScheduled, kStarted, kPaused, kRolledBack, kCompleted, kClosed };
std::string_view NoticeEventName(NoticeEvent event);  // "rolled_back"
// kInvalidArgument listing the events for another name.
Result<NoticeEvent> ParseNoticeEvent(std::string_view name);
const std::vector<NoticeEvent>& AllNoticeEvents();

// The event the transition before → after is, if any: the action of the
// history entry `after` added.
std::optional<NoticeEvent> NoticeEventOf(const release::Release& before,
                                         const release::Release& after);

inline constexpr std::string_view kChannelWebhook = "webhook";
inline constexpr std::string_view kChannelEmail = "email";

struct NoticeSubscription {
  std::string id;  // "N-1"
  std::vector<NoticeEvent> events;
  std::string channel;  // webhook | email
  std::string target;   // URL or e-mail address
  std::string secret;   // HMAC key of a webhook, sealed (secret_box.hpp); "" for none
  std::string time_zone;
  release::Lang lang = release::Lang::kEn;  // the language of its notices
  std::string created;
  std::string created_by;
  std::string removed;  // when removed; "" while active

  std::string ConnectorName() const { return std::string(kNoticeConnectorPrefix) + id; }
  bool Wants(NoticeEvent event) const;
  // Without the secret (only whether there is one).
  nlohmann::json ToJson() const;
};

// What the notice counts, read from the store when it is queued.
struct NoticeFacts {
  std::vector<std::string> packages;  // "c3m-video 1.3.0 (sha256 1a2b3c4d…)"
  std::size_t target_hosts = 0;
  std::size_t succeeded = 0;  // hosts whose latest install succeeded
  std::size_t failed = 0;     // hosts whose latest install failed
  std::size_t unfinished = 0;
  std::size_t rolled_back = 0;  // hosts with a succeeded rollback
};

struct Notice {
  std::string subject;
  std::string text;  // UTF-8, lines end with "\n"
};

// The notice of `event` that happened to `release` (its latest history
// entry), times shown in `zone`, written in `lang`: in zh-CN with the
// procedure's terms (上线通知, 发布影响范围, 回退方案, 已回退, ...) from the table
// of record_render.cpp; in English the states and close codes are their
// names ("deploying -> failed"). Pure.
Notice ComposeNotice(NoticeEvent event, const release::Release& release, const NoticeFacts& facts,
                     const release::TimeZone& zone, release::Lang lang = release::Lang::kEn);

// Checks and stores a subscription (id, created assigned). kInvalidArgument
// naming the field: no events, an unknown event, a URL that is not http(s),
// an address that is not one mailbox, an unknown time zone. The language
// is the caller's to parse (ParseLang); it is stored with the row. Audited
// "notify.add". A webhook's secret is stored sealed by `secrets`
// (SubscriptionSecretContext), never in clear; the subscription returned
// holds the sealed form.
Result<NoticeSubscription> AddSubscription(Transaction& tx, NoticeSubscription input,
                                           std::string_view actor, const SecretBox& secrets);
// What a subscription's sealed secret is bound to: its row.
std::string SubscriptionSecretContext(std::string_view id);
// Seals the secrets an older coordinator stored in clear; how many it sealed.
Result<int> SealClearSubscriptionSecrets(Transaction& tx, const SecretBox& secrets);
// Whether any subscription, removed or not, holds a sealed secret.
bool AnySealedSubscriptionSecret(soci::session& sql);
// Active subscriptions in id order.
std::vector<NoticeSubscription> ListSubscriptions(soci::session& sql);
// Active or removed; kNotFound when there is no such id.
Result<NoticeSubscription> FindSubscription(soci::session& sql, std::string_view id);
// kNotFound for an unknown or already removed id. Audited "notify.remove".
Result<void> RemoveSubscription(Transaction& tx, std::string_view id, std::string_view actor);

// Queues the notices of the transition before → after (nothing when it is
// no notice event). Call right after SaveRelease, in its transaction.
void EnqueueNotices(Transaction& tx, const release::Release& before, const release::Release& after);

}  // namespace fabu::coordinator
