// Outward CMDB connectors: each delivers one outbox message (cmdb.hpp) to
// the outside.
//
//   webhook  POSTs the message's exact JSON body with
//              X-Fabu-Signature: sha256=<hex HMAC-SHA256 of the body, keyed
//                                          with the configured secret>
//              Idempotency-Key:  <the message's idempotency key>
//              X-Fabu-Event:     <kind.result>
//            and counts any 2xx answer as delivered.
//   itop     speaks iTop's REST/JSON API (POST url, form fields auth_user,
//            auth_pwd, json_data): core/get of the server by its name,
//            core/create when absent; core/get of the software instance by
//            name and server, then core/create or core/update of its version
//            field with the version the host runs after the deployment.
//            Delivered when every answer has code 0.
//
// A failure is an Error whose message says what the receiver answered; the
// worker stores it as the message's last error and retries. Connectors are
// immutable after construction; Deliver may run on any one thread at a time.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/cmdb/cmdb.hpp"
#include "coordinator/cmdb/cmdb_config.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

class Connector {
 public:
  virtual ~Connector() = default;
  virtual const std::string& name() const = 0;
  virtual std::string_view type() const = 0;
  virtual Result<void> Deliver(const OutboxMessage& message) = 0;
};

// Makes the connectors of `config`, reading secret and password files
// (relative paths are relative to `data_root`). kInvalidArgument naming the
// connector and file when one cannot be read or is empty.
Result<std::vector<std::unique_ptr<Connector>>> MakeConnectors(
    const CmdbConfig& config, const std::filesystem::path& data_root);

// "sha256=<hex>" of HMAC-SHA256(`secret`, `body`) (OpenSSL).
std::string WebhookSignature(std::string_view secret, std::string_view body);

}  // namespace fabu::coordinator
