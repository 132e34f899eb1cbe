// The "cmdb" section of the coordinator's config.json: the outward
// connectors and how deliveries are retried (docs/coordinator.md "CMDB").
//
//   "cmdb": {
//     "connectors": [
//       {"name": "ops-hook", "type": "webhook", "url": "https://hooks.example/fabu",
//        "secret_file": "cmdb-hook.secret",          // or "secret": "..."
//        "ca_file": "", "timeout_seconds": 30},
//       {"name": "itop", "type": "itop",
//        "url": "https://itop.example/webservices/rest.php?version=1.3",
//        "user": "fabu-rest", "password_file": "itop.pw",   // or "password"
//        "organization": "Demo",
//        "classes": {"server": "Server", "software": "OtherSoftware"},
//        "fields": {"server_name": "name", "software_name": "name",
//                   "software_server": "system_id", "software_version": "description"}}
//     ],
//     "retry": {"initial_seconds": 5, "max_seconds": 600,
//               "notice_give_up_seconds": 21600}
//   }
//
// Names are 1-64 of [a-z0-9._-] and unique. Relative file paths are
// relative to the data directory. Unknown keys are refused with their path.
// A value type.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::coordinator {

struct ConnectorConfig {
  std::string name;
  std::string type;  // webhook | itop
  std::string url;
  std::string ca_file;
  std::chrono::seconds timeout{30};
  // webhook
  std::string secret;
  std::string secret_file;
  // itop
  std::string user;
  std::string password;
  std::string password_file;
  std::string organization;  // org_id of what is created, by name; "" for none
  std::string server_class = "Server";
  std::string software_class = "OtherSoftware";
  std::string server_name_field = "name";
  std::string software_name_field = "name";
  std::string software_server_field = "system_id";
  std::string software_version_field = "description";

  nlohmann::json ToJson() const;
};

struct CmdbConfig {
  std::vector<ConnectorConfig> connectors;
  std::chrono::seconds retry_initial{5};
  std::chrono::seconds retry_max{600};
  // A release notice still undelivered this long after it was queued is
  // given up (delivery.hpp): a late notice of a go-live helps nobody.
  std::chrono::seconds notice_give_up{6 * 3600};

  // `value` is the "cmdb" member; `path` names it in errors.
  static Result<CmdbConfig> FromJson(const nlohmann::json& value, std::string_view path = "cmdb");
  nlohmann::json ToJson() const;
};

}  // namespace fabu::coordinator
