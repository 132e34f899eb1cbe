// /api/v1/notify: subscriptions to release notices (docs/coordinator.md,
// coordinator/notify/notices.hpp).
//
//   POST /api/v1/notify/subscriptions      {"events": ["scheduled", ...],
//                                           "webhook": URL, "secret": S | "email": ADDR,
//                                           "time_zone": "Area/City",
//                                           "lang": "en" | "zh-CN"}      admin, release_manager
//   GET  /api/v1/notify/subscriptions                                  any user
//   POST /api/v1/notify/subscriptions/{id}/remove                      admin, release_manager
#include <fmt/format.h>

#include "coordinator/api/api_context.hpp"
#include "coordinator/common/json_input.hpp"
#include "coordinator/common/webhook_allow.hpp"
#include "coordinator/notify/notices.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;
namespace rel = release;

Result<NoticeSubscription> SubscriptionFromBody(const json& body, const ApiContext& api) {
  if (auto ok = CheckObject(body, "",
                            {{"events", JsonType::kArray, true},
                             {"webhook", JsonType::kString},
                             {"secret", JsonType::kString},
                             {"email", JsonType::kString},
                             {"time_zone", JsonType::kString},
                             {"lang", JsonType::kString}});
      !ok) {
    return std::unexpected(ok.error());
  }
  NoticeSubscription s;
  for (std::size_t i = 0; i < body["events"].size(); ++i) {
    const json& name = body["events"][i];
    if (!name.is_string()) {
      return Fail(ErrorCode::kInvalidArgument, fmt::format("events[{}]: must be a string", i));
    }
    auto event = ParseNoticeEvent(name.get<std::string>());
    if (!event) return std::unexpected(event.error().WithContext(fmt::format("events[{}]", i)));
    if (!s.Wants(*event)) s.events.push_back(*event);
  }
  const bool webhook = body.contains("webhook") && !body["webhook"].is_null();
  const bool email = body.contains("email") && !body["email"].is_null();
  if (webhook == email) {
    return Fail(ErrorCode::kInvalidArgument, "webhook, email: give exactly one of them");
  }
  if (email && api.config.smtp.url.empty()) {
    // A notice that can never be sent would wait in the outbox forever.
    return Fail(ErrorCode::kFailedPrecondition,
                "email: this coordinator has no SMTP server to send e-mail through; set "
                "\"smtp\" (at least smtp.url and smtp.from) in config.json and restart it, or "
                "subscribe a webhook");
  }
  s.channel = std::string(webhook ? kChannelWebhook : kChannelEmail);
  s.target = body[webhook ? "webhook" : "email"].get<std::string>();
  if (webhook) {
    // Only where config.json's webhook_allow says (docs/coordinator.md).
    if (auto ok = CheckWebhookTarget(s.target, api.config.webhook_allow); !ok) {
      return std::unexpected(ok.error());
    }
  }
  // Nulls count as absent (CheckObject lets them through).
  auto text = [&](const char* name, const std::string& absent) {
    return body.contains(name) && body[name].is_string() ? body[name].get<std::string>() : absent;
  };
  s.secret = text("secret", "");
  s.time_zone = text("time_zone", api.config.time_zone);
  auto lang = rel::ParseLang(text("lang", "en"));
  if (!lang) return std::unexpected(lang.error());
  s.lang = *lang;
  return s;
}

}  // namespace

void RegisterNotifyRoutes(Router& router, const ApiContext& api) {
  router.Add(Method::kPost, "/api/v1/notify/subscriptions",
             RouteOptions::ForRoles({Role::kAdmin, Role::kReleaseManager},
                                    "subscribing to release notices"),
             [api](RequestContext& ctx) -> Result<Response> {
               auto body = ctx.Json();
               if (!body) return std::unexpected(body.error());
               auto input = SubscriptionFromBody(*body, api);
               if (!input) return std::unexpected(input.error());
               auto added = api.store.Write(
                   ctx.Origin(), [&](Transaction& tx) -> Result<NoticeSubscription> {
                     return AddSubscription(tx, *input, ctx.user().name, api.secrets);
                   });
               if (!added) return std::unexpected(added.error());
               return Response::Created(added->ToJson());
             });

  router.Add(Method::kGet, "/api/v1/notify/subscriptions", RouteOptions::AnyUser(),
             [api](RequestContext&) -> Result<Response> {
               auto items = api.store.Read([&](soci::session& sql) -> Result<json> {
                 json out = json::array();
                 for (const NoticeSubscription& s : ListSubscriptions(sql)) {
                   out.push_back(s.ToJson());
                 }
                 return out;
               });
               if (!items) return std::unexpected(items.error());
               return Response::Ok({{"subscriptions", *items}});
             });

  router.Add(Method::kPost, "/api/v1/notify/subscriptions/{id}/remove",
             RouteOptions::ForRoles({Role::kAdmin, Role::kReleaseManager},
                                    "removing a notice subscription"),
             [api](RequestContext& ctx) -> Result<Response> {
               const std::string id = ctx.path_params.at("id");
               auto removed = api.store.Write(ctx.Origin(), [&](Transaction& tx) -> Result<void> {
                 return RemoveSubscription(tx, id, ctx.user().name);
               });
               if (!removed) return std::unexpected(removed.error());
               return Response::Ok({{"removed", id}});
             });
}

}  // namespace fabu::coordinator
