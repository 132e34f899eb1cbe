#include "coordinator/notify/notice_connector.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include "coordinator/cmdb/outbound.hpp"
#include "coordinator/common/clock.hpp"
#include "coordinator/notify/notices.hpp"

namespace fabu::coordinator {
namespace {

using nlohmann::json;

class NoticeConnector final : public Connector {
 public:
  NoticeConnector(Store& store, SmtpConfig smtp, std::string password, const SecretBox& secrets)
      : store_(store), smtp_(std::move(smtp)), password_(std::move(password)), secrets_(secrets) {}
  const std::string& name() const override { return name_; }
  std::string_view type() const override { return "notify"; }

  Result<void> Deliver(const OutboxMessage& message) override {
    const std::string id = message.connector.substr(kNoticeConnectorPrefix.size());
    auto subscription = store_.Read([&](soci::session& sql) { return FindSubscription(sql, id); });
    if (!subscription) return std::unexpected(subscription.error());
    json payload = json::parse(message.payload, nullptr, false);
    if (!payload.is_object()) {
      return Fail(ErrorCode::kInternal,
                  fmt::format("outbox message {}: payload is not JSON", message.id));
    }
    if (subscription->channel == kChannelWebhook) return Post(*subscription, message, payload);
    return Mail(*subscription, message, payload);
  }

 private:
  Result<void> Post(const NoticeSubscription& s, const OutboxMessage& message,
                    const json& payload) {
    platform::HttpRequest request;
    request.url = s.target;
    request.body = message.payload;
    request.headers = {"Content-Type: application/json",
                       "Idempotency-Key: " + message.idempotency_key,
                       "X-Fabu-Event: notice." + payload.value("event", "")};
    if (!s.secret.empty()) {
      // Opened for this signature only; the clear key is not kept.
      auto secret = secrets_.Open(s.secret, SubscriptionSecretContext(s.id));
      if (!secret) return std::unexpected(secret.error());
      request.headers.push_back("X-Fabu-Signature: " + WebhookSignature(*secret, message.payload));
      OPENSSL_cleanse(secret->data(), secret->size());
    }
    auto response = PostOutbound(std::move(request), "");
    if (!response) return std::unexpected(response.error());
    if (response->status < 200 || response->status >= 300) {
      return Fail(ErrorCode::kUnavailable,
                  fmt::format("POST {}: HTTP {}", s.target, response->status));
    }
    return {};
  }

  Result<void> Mail(const NoticeSubscription& s, const OutboxMessage& message,
                    const json& payload) {
    if (smtp_.url.empty()) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("notice {} to {}: config.json has no \"smtp\" section (url, from)",
                              message.idempotency_key, s.target));
    }
    MailMessage mail;
    mail.from = smtp_.from;
    mail.to = s.target;
    mail.subject = payload.value("subject", "");
    mail.text = payload.value("text", "");
    std::string local = message.idempotency_key + "." + s.id;
    for (char& c : local) {
      if (c == '/') c = '.';
    }
    mail.message_id = local + smtp_.from.substr(smtp_.from.find('@'));
    auto created = protocol::ParseRfc3339(message.created);
    mail.date = created ? created->seconds : 0;
    return SendMail(smtp_, password_, mail);
  }

  const std::string name_{kNoticeConnectorPrefix};
  Store& store_;
  SmtpConfig smtp_;
  std::string password_;
  const SecretBox& secrets_;
};

}  // namespace

Result<std::unique_ptr<Connector>> MakeNoticeConnector(Store& store, const SmtpConfig& smtp,
                                                       const std::filesystem::path& data_root,
                                                       const SecretBox& secrets) {
  auto password = ReadSmtpPassword(smtp, data_root);
  if (!password) return std::unexpected(password.error());
  return std::make_unique<NoticeConnector>(store, smtp, std::move(*password), secrets);
}

}  // namespace fabu::coordinator
