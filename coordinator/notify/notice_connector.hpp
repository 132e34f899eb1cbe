// Delivers the notices EnqueueNotices queued (notices.hpp) as one more
// connector of the CMDB delivery worker (delivery.hpp): the worker hands it
// every outbox message of a connector named "notify:<subscription>", so
// notices have the outbox's order, retries and restart behaviour.
//
// A webhook subscription gets the message's JSON body POSTed with the same
// headers as a CMDB webhook (X-Fabu-Signature when it has a secret,
// Idempotency-Key, X-Fabu-Event: notice.<event>); any 2xx is delivered. An
// e-mail subscription gets the notice's subject and text through the
// "smtp" section of config.json (smtp_mail.hpp). The subscription is read
// from the store at each delivery, outside any transaction.
#pragma once

#include <filesystem>
#include <memory>

#include "coordinator/cmdb/connectors.hpp"
#include "coordinator/common/secret_box.hpp"
#include "coordinator/notify/smtp_mail.hpp"
#include "coordinator/store/store.hpp"

namespace fabu::coordinator {

// kInvalidArgument naming smtp.password_file when it cannot be read.
// `secrets` opens a webhook's sealed secret when a delivery is signed, and
// only then; it must outlive the connector.
Result<std::unique_ptr<Connector>> MakeNoticeConnector(Store& store, const SmtpConfig& smtp,
                                                       const std::filesystem::path& data_root,
                                                       const SecretBox& secrets);

}  // namespace fabu::coordinator
