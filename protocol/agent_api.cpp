#include "protocol/agent_api.hpp"

#include <fmt/format.h>

#include <initializer_list>

namespace fabu::protocol {
namespace {

using nlohmann::json;

std::string Path(std::string_view parent, std::string_view name) {
  return parent.empty() ? std::string(name) : fmt::format("{}.{}", parent, name);
}

// Strict reading of one JSON object: known fields only, right types.
class Fields {
 public:
  Fields(const json& object, std::string_view path) : object_(object), path_(path) {}

  Result<void> Only(std::initializer_list<std::string_view> known) const {
    if (!object_.is_object()) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}: must be an object", path_.empty() ? "body" : path_));
    }
    for (const auto& [key, value] : object_.items()) {
      bool ok = false;
      for (auto k : known) ok = ok || k == key;
      if (!ok) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("{}: unknown field", Path(path_, key.substr(0, 64))));
      }
    }
    return {};
  }

  Result<std::string> String(std::string_view name, bool required = true,
                             std::size_t max_bytes = kNoLimit) const {
    auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) {
      if (required) return Missing(name);
      return std::string();
    }
    if (!it->is_string()) return Wrong(name, "a string");
    const auto& text = it->get_ref<const std::string&>();
    if (text.size() > max_bytes) return TooLong(Path(path_, name), text.size(), max_bytes);
    return text;
  }

  Result<std::uint64_t> Unsigned(std::string_view name, bool required = true) const {
    auto it = object_.find(name);
    if (it == object_.end()) {
      if (required) return Missing(name);
      return std::uint64_t{0};
    }
    if (!it->is_number_integer() || (!it->is_number_unsigned() && it->get<std::int64_t>() < 0)) {
      return Wrong(name, "a non-negative integer");
    }
    return it->get<std::uint64_t>();
  }

  Result<std::map<std::string, std::string>> StringMap(
      std::string_view name, std::size_t max_entries = kNoLimit,
      std::size_t max_key_bytes = kNoLimit, std::size_t max_value_bytes = kNoLimit) const {
    std::map<std::string, std::string> out;
    auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) return out;
    if (!it->is_object()) return Wrong(name, "an object of strings");
    if (it->size() > max_entries) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}: {} entries, at most {} allowed", Path(path_, name), it->size(),
                              max_entries));
    }
    for (const auto& [key, value] : it->items()) {
      if (key.size() > max_key_bytes) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("{}: a key of {} bytes, at most {} allowed", Path(path_, name),
                                key.size(), max_key_bytes));
      }
      if (!value.is_string()) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("{}: must be a string", Path(Path(path_, name), key)));
      }
      const auto& text = value.get_ref<const std::string&>();
      if (text.size() > max_value_bytes) {
        return TooLong(Path(Path(path_, name), key), text.size(), max_value_bytes);
      }
      out[key] = text;
    }
    return out;
  }

  const json* Find(std::string_view name) const {
    auto it = object_.find(name);
    return it == object_.end() ? nullptr : &*it;
  }
  std::string PathOf(std::string_view name) const { return Path(path_, name); }

 private:
  static constexpr std::size_t kNoLimit = static_cast<std::size_t>(-1);

  static std::unexpected<Error> TooLong(const std::string& path, std::size_t size,
                                        std::size_t max_bytes) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: {} bytes, at most {} allowed", path, size, max_bytes));
  }
  std::unexpected<Error> Missing(std::string_view name) const {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("{}: missing", Path(path_, name)));
  }
  std::unexpected<Error> Wrong(std::string_view name, std::string_view what) const {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: must be {}", Path(path_, name), what));
  }

  const json& object_;
  std::string path_;
};

#define FABU_TRY_ASSIGN(target, expr)                              \
  do {                                                             \
    auto fabu_value_ = (expr);                                     \
    if (!fabu_value_) return std::unexpected(fabu_value_.error()); \
    target = std::move(*fabu_value_);                              \
  } while (false)

json StringMapJson(const std::map<std::string, std::string>& map) {
  json out = json::object();
  for (const auto& [k, v] : map) out[k] = v;
  return out;
}

}  // namespace

json InventoryToJson(const Inventory& inventory) {
  json apps = json::array();
  for (const InstalledApp& app : inventory.apps) {
    apps.push_back({{"name", app.name}, {"current", app.current}, {"releases", app.releases}});
  }
  return {{"hostname", inventory.hostname},
          {"os", inventory.os},
          {"kernel", inventory.kernel},
          {"arch", inventory.arch},
          {"cpus", inventory.cpus},
          {"memory_bytes", inventory.memory_bytes},
          {"agent_version", inventory.agent_version},
          {"apps", std::move(apps)}};
}

Result<Inventory> InventoryFromJson(const json& j, std::string_view path) {
  Fields f(j, path);
  if (auto ok = f.Only(
          {"hostname", "os", "kernel", "arch", "cpus", "memory_bytes", "agent_version", "apps"});
      !ok) {
    return std::unexpected(ok.error());
  }
  Inventory inv;
  FABU_TRY_ASSIGN(inv.hostname, f.String("hostname", true, kMaxHostNameBytes));
  if (auto ok = CheckDnsName(inv.hostname); !ok) {
    return std::unexpected(ok.error().WithContext(f.PathOf("hostname")));
  }
  FABU_TRY_ASSIGN(inv.os, f.String("os", false, kMaxFactBytes));
  FABU_TRY_ASSIGN(inv.kernel, f.String("kernel", false, kMaxFactBytes));
  FABU_TRY_ASSIGN(inv.arch, f.String("arch", false, kMaxFactBytes));
  std::uint64_t cpus = 0;
  FABU_TRY_ASSIGN(cpus, f.Unsigned("cpus", false));
  inv.cpus = static_cast<std::uint32_t>(cpus);
  FABU_TRY_ASSIGN(inv.memory_bytes, f.Unsigned("memory_bytes", false));
  FABU_TRY_ASSIGN(inv.agent_version, f.String("agent_version", false, kMaxFactBytes));
  if (const json* apps = f.Find("apps"); apps != nullptr && !apps->is_null()) {
    if (!apps->is_array()) {
      return Fail(ErrorCode::kInvalidArgument, f.PathOf("apps") + ": must be an array");
    }
    if (apps->size() > kMaxApps) {
      return Fail(
          ErrorCode::kInvalidArgument,
          fmt::format("{}: {} apps, at most {} allowed", f.PathOf("apps"), apps->size(), kMaxApps));
    }
    for (std::size_t i = 0; i < apps->size(); ++i) {
      const std::string where = fmt::format("{}[{}]", f.PathOf("apps"), i);
      Fields a((*apps)[i], where);
      if (auto ok = a.Only({"name", "current", "releases"}); !ok) {
        return std::unexpected(ok.error());
      }
      InstalledApp app;
      FABU_TRY_ASSIGN(app.name, a.String("name", true, kMaxAppNameBytes));
      FABU_TRY_ASSIGN(app.current, a.String("current", false, kMaxVersionBytes));
      if (const json* releases = a.Find("releases"); releases != nullptr) {
        if (!releases->is_array()) {
          return Fail(ErrorCode::kInvalidArgument, where + ".releases: must be an array");
        }
        if (releases->size() > kMaxReleasesPerApp) {
          return Fail(ErrorCode::kInvalidArgument,
                      fmt::format("{}.releases: {} versions, at most {} allowed", where,
                                  releases->size(), kMaxReleasesPerApp));
        }
        for (const json& r : *releases) {
          if (!r.is_string() || r.get_ref<const std::string&>().size() > kMaxVersionBytes) {
            return Fail(ErrorCode::kInvalidArgument,
                        fmt::format("{}.releases: must hold version strings of at most {} bytes",
                                    where, kMaxVersionBytes));
          }
          app.releases.push_back(r.get<std::string>());
        }
      }
      inv.apps.push_back(std::move(app));
    }
  }
  return inv;
}

Result<void> CheckDnsName(std::string_view name) {
  const auto bad = [&](std::string_view why) {
    std::string shown(name.substr(0, 64));
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '?';
    }
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}{}\" is not a DNS host name: {}", shown,
                            name.size() > 64 ? "..." : "", why));
  };
  if (name.empty() || name.size() > kMaxHostNameBytes) {
    return bad(fmt::format("it must be 1 to {} characters", kMaxHostNameBytes));
  }
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return bad("a label between dots is empty");
      label = 0;
      continue;
    }
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return bad("only A-Z, a-z, 0-9, '-' and '.' are allowed");
    if (++label > 63) return bad("a label is longer than 63 characters");
  }
  if (label == 0) return bad("a label between dots is empty");
  return {};
}

json EnrollRequestToJson(const EnrollRequest& r) {
  json j = {{"token", r.token},
            {"name", r.name},
            {"labels", StringMapJson(r.labels)},
            {"inventory", InventoryToJson(r.inventory)}};
  if (!r.enroll_key.empty()) j["enroll_key"] = r.enroll_key;
  if (!r.csr.empty()) j["csr"] = r.csr;
  return j;
}

Result<EnrollRequest> EnrollRequestFromJson(const json& j) {
  Fields f(j, "");
  if (auto ok = f.Only({"token", "name", "labels", "inventory", "enroll_key", "csr"}); !ok) {
    return std::unexpected(ok.error());
  }
  EnrollRequest r;
  FABU_TRY_ASSIGN(r.token, f.String("token", true, kMaxTokenBytes));
  FABU_TRY_ASSIGN(r.name, f.String("name", true, kMaxHostNameBytes));
  FABU_TRY_ASSIGN(r.labels,
                  f.StringMap("labels", kMaxLabels, kMaxLabelKeyBytes, kMaxLabelValueBytes));
  FABU_TRY_ASSIGN(r.enroll_key, f.String("enroll_key", false, 64));
  FABU_TRY_ASSIGN(r.csr, f.String("csr", false, kMaxCsrBytes));
  if (!r.enroll_key.empty() &&
      (r.enroll_key.size() != 64 ||
       r.enroll_key.find_first_not_of("0123456789abcdef") != std::string::npos)) {
    return Fail(ErrorCode::kInvalidArgument,
                "enroll_key: must be 64 lower-case hex digits (256 random bits)");
  }
  const json* inventory = f.Find("inventory");
  if (inventory == nullptr) return Fail(ErrorCode::kInvalidArgument, "inventory: missing");
  FABU_TRY_ASSIGN(r.inventory, InventoryFromJson(*inventory, "inventory"));
  return r;
}

json EnrollResponseToJson(const EnrollResponse& r) {
  json j = {{"name", r.name}, {"credential", r.credential}, {"labels", StringMapJson(r.labels)}};
  if (!r.certificate.empty()) j["certificate"] = r.certificate;
  return j;
}

Result<EnrollResponse> EnrollResponseFromJson(const json& j) {
  Fields f(j, "");
  if (auto ok = f.Only({"name", "credential", "labels", "certificate"}); !ok) {
    return std::unexpected(ok.error());
  }
  EnrollResponse r;
  FABU_TRY_ASSIGN(r.name, f.String("name"));
  FABU_TRY_ASSIGN(r.credential, f.String("credential"));
  FABU_TRY_ASSIGN(r.labels, f.StringMap("labels"));
  FABU_TRY_ASSIGN(r.certificate, f.String("certificate", false));
  return r;
}

json CertificateRequestToJson(const CertificateRequest& r) { return {{"csr", r.csr}}; }

Result<CertificateRequest> CertificateRequestFromJson(const json& j) {
  Fields f(j, "");
  if (auto ok = f.Only({"csr"}); !ok) return std::unexpected(ok.error());
  CertificateRequest r;
  FABU_TRY_ASSIGN(r.csr, f.String("csr", true, kMaxCsrBytes));
  return r;
}

json CertificateResponseToJson(const CertificateResponse& r) {
  return {{"certificate", r.certificate}, {"serial", r.serial}, {"not_after", r.not_after}};
}

Result<CertificateResponse> CertificateResponseFromJson(const json& j) {
  Fields f(j, "");
  if (auto ok = f.Only({"certificate", "serial", "not_after"}); !ok) {
    return std::unexpected(ok.error());
  }
  CertificateResponse r;
  FABU_TRY_ASSIGN(r.certificate, f.String("certificate"));
  FABU_TRY_ASSIGN(r.serial, f.String("serial"));
  FABU_TRY_ASSIGN(r.not_after, f.String("not_after"));
  return r;
}

json AssignmentToJson(const Assignment& a) {
  json j = {{"deployment", a.deployment},
            {"release", a.release},
            {"kind", DeploymentKindName(a.kind)},
            {"app", a.app},
            {"version", a.version},
            {"package_id", a.package_id},
            {"package_size", a.package_size},
            {"package_url", a.package_url},
            {"host_timeout_seconds", a.host_timeout_seconds}};
  if (a.observe_seconds != 0) j["observe_seconds"] = a.observe_seconds;
  if (a.observe_interval_seconds != 0) j["observe_interval_seconds"] = a.observe_interval_seconds;
  return j;
}

Result<Assignment> AssignmentFromJson(const json& j, std::string_view path) {
  Fields f(j, path);
  if (auto ok = f.Only({"deployment", "release", "kind", "app", "version", "package_id",
                        "package_size", "package_url", "host_timeout_seconds", "observe_seconds",
                        "observe_interval_seconds"});
      !ok) {
    return std::unexpected(ok.error());
  }
  Assignment a;
  FABU_TRY_ASSIGN(a.deployment, f.String("deployment"));
  FABU_TRY_ASSIGN(a.release, f.String("release", false));
  std::string kind;
  FABU_TRY_ASSIGN(kind, f.String("kind"));
  auto parsed = ParseDeploymentKind(kind);
  if (!parsed) return std::unexpected(parsed.error().WithContext(f.PathOf("kind")));
  a.kind = *parsed;
  FABU_TRY_ASSIGN(a.app, f.String("app"));
  FABU_TRY_ASSIGN(a.version, f.String("version", false));
  FABU_TRY_ASSIGN(a.package_id, f.String("package_id", false));
  FABU_TRY_ASSIGN(a.package_size, f.Unsigned("package_size", false));
  FABU_TRY_ASSIGN(a.package_url, f.String("package_url", false));
  std::uint64_t timeout = 0;
  FABU_TRY_ASSIGN(timeout, f.Unsigned("host_timeout_seconds", false));
  a.host_timeout_seconds = static_cast<std::int64_t>(timeout);
  std::uint64_t observe = 0;
  FABU_TRY_ASSIGN(observe, f.Unsigned("observe_seconds", false));
  std::uint64_t observe_interval = 0;
  FABU_TRY_ASSIGN(observe_interval, f.Unsigned("observe_interval_seconds", false));
  // Bounded so that seconds never overflow a duration in milliseconds.
  constexpr std::uint64_t kMaxObserve = 366ULL * 24 * 3600;
  if (observe > kMaxObserve || observe_interval > kMaxObserve) {
    return Fail(ErrorCode::kInvalidArgument,
                f.PathOf(observe > kMaxObserve ? "observe_seconds" : "observe_interval_seconds") +
                    ": at most a year (31622400 s)");
  }
  a.observe_seconds = static_cast<std::int64_t>(observe);
  a.observe_interval_seconds = static_cast<std::int64_t>(observe_interval);
  if (a.kind == DeploymentKind::kInstall && (a.package_id.empty() || a.package_url.empty())) {
    return Fail(ErrorCode::kInvalidArgument,
                f.PathOf("package_id") + ": an install assignment needs a package id and url");
  }
  return a;
}

json AssignmentResponseToJson(const std::optional<Assignment>& assignment,
                              const std::optional<PreflightRequest>& preflight) {
  json out = {{"assignment", assignment ? AssignmentToJson(*assignment) : json(nullptr)}};
  if (preflight) out["preflight"] = PreflightRequestToJson(*preflight);
  return out;
}

Result<std::optional<Assignment>> AssignmentResponseFromJson(const json& j) {
  Fields f(j, "");
  if (auto ok = f.Only({"assignment", "preflight"}); !ok) return std::unexpected(ok.error());
  const json* a = f.Find("assignment");
  if (a == nullptr || a->is_null()) return std::optional<Assignment>();
  auto parsed = AssignmentFromJson(*a, "assignment");
  if (!parsed) return std::unexpected(parsed.error());
  return std::optional<Assignment>(std::move(*parsed));
}

Result<std::optional<PreflightRequest>> PreflightOfAssignmentResponse(const json& j) {
  if (!j.is_object()) return Fail(ErrorCode::kInvalidArgument, "expected a JSON object");
  const auto it = j.find("preflight");
  if (it == j.end() || it->is_null()) return std::optional<PreflightRequest>();
  auto parsed = PreflightRequestFromJson(*it, "preflight");
  if (!parsed) return std::unexpected(parsed.error());
  return std::optional<PreflightRequest>(std::move(*parsed));
}

json PreflightRequestToJson(const PreflightRequest& r) {
  return {{"id", r.id},
          {"release", r.release},
          {"app", r.app},
          {"version", r.version},
          {"package_id", r.package_id},
          {"package_size", r.package_size},
          {"unpacked_size", r.unpacked_size},
          {"key_id", r.key_id},
          {"targets", r.targets}};
}

Result<PreflightRequest> PreflightRequestFromJson(const json& j, std::string_view path) {
  Fields f(j, path);
  if (auto ok = f.Only({"id", "release", "app", "version", "package_id", "package_size",
                        "unpacked_size", "key_id", "targets"});
      !ok) {
    return std::unexpected(ok.error());
  }
  PreflightRequest r;
  FABU_TRY_ASSIGN(r.id, f.String("id"));
  FABU_TRY_ASSIGN(r.release, f.String("release"));
  FABU_TRY_ASSIGN(r.app, f.String("app"));
  FABU_TRY_ASSIGN(r.version, f.String("version"));
  FABU_TRY_ASSIGN(r.package_id, f.String("package_id"));
  FABU_TRY_ASSIGN(r.package_size, f.Unsigned("package_size"));
  FABU_TRY_ASSIGN(r.unpacked_size, f.Unsigned("unpacked_size"));
  FABU_TRY_ASSIGN(r.key_id, f.String("key_id"));
  FABU_TRY_ASSIGN(r.targets, f.StringMap("targets"));
  return r;
}

json PreflightAnswerToJson(const PreflightAnswer& a) {
  return {{"id", a.id},
          {"ready", a.ready},
          {"reasons", a.reasons},
          {"free_bytes", a.free_bytes},
          {"installed_version", a.installed_version}};
}

Result<PreflightAnswer> PreflightAnswerFromJson(const json& j) {
  Fields f(j, "");
  if (auto ok = f.Only({"id", "ready", "reasons", "free_bytes", "installed_version"}); !ok) {
    return std::unexpected(ok.error());
  }
  PreflightAnswer a;
  FABU_TRY_ASSIGN(a.id, f.String("id"));
  const json* ready = f.Find("ready");
  if (ready == nullptr || !ready->is_boolean()) {
    return Fail(ErrorCode::kInvalidArgument, "ready: must be true or false");
  }
  a.ready = ready->get<bool>();
  const json* reasons = f.Find("reasons");
  if (reasons != nullptr) {
    if (!reasons->is_array() || reasons->size() > 32) {
      return Fail(ErrorCode::kInvalidArgument, "reasons: must be a list of at most 32 texts");
    }
    for (const json& reason : *reasons) {
      if (!reason.is_string() || reason.get<std::string>().size() > 1000) {
        return Fail(ErrorCode::kInvalidArgument, "reasons: each a text of at most 1000 bytes");
      }
      a.reasons.push_back(reason.get<std::string>());
    }
  }
  FABU_TRY_ASSIGN(a.free_bytes, f.Unsigned("free_bytes", false));
  FABU_TRY_ASSIGN(a.installed_version, f.String("installed_version", false));
  if (!a.ready && a.reasons.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "reasons: a host that is not ready says why");
  }
  return a;
}

json EventBatchToJson(const EventBatch& batch) {
  json events = json::array();
  for (const DeploymentEvent& e : batch.events) events.push_back(EventToJson(e));
  return {{"events", std::move(events)}};
}

Result<EventBatch> EventBatchFromJson(const json& j) {
  Fields f(j, "");
  if (auto ok = f.Only({"events"}); !ok) return std::unexpected(ok.error());
  const json* events = f.Find("events");
  if (events == nullptr || !events->is_array()) {
    return Fail(ErrorCode::kInvalidArgument, "events: must be an array");
  }
  EventBatch batch;
  for (std::size_t i = 0; i < events->size(); ++i) {
    auto e = EventFromJson((*events)[i]);
    if (!e) return std::unexpected(e.error().WithContext(fmt::format("events[{}]", i)));
    batch.events.push_back(std::move(*e));
  }
  return batch;
}

json EventAckToJson(const EventAck& ack) {
  json through = json::object();
  for (const auto& [deployment, seq] : ack.through) through[deployment] = seq;
  return {{"acknowledged", std::move(through)}};
}

Result<EventAck> EventAckFromJson(const json& j) {
  Fields f(j, "");
  if (auto ok = f.Only({"acknowledged"}); !ok) return std::unexpected(ok.error());
  const json* through = f.Find("acknowledged");
  if (through == nullptr || !through->is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "acknowledged: must be an object");
  }
  EventAck ack;
  for (const auto& [deployment, seq] : through->items()) {
    if (!seq.is_number_unsigned()) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("acknowledged.{}: must be a sequence number", deployment));
    }
    ack.through[deployment] = seq.get<std::uint64_t>();
  }
  return ack;
}

}  // namespace fabu::protocol
