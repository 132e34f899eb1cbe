#include "coordinator/common/webhook_allow.hpp"

#include <fmt/format.h>

namespace fabu::coordinator {

Result<void> CheckWebhookAllowEntry(std::string_view entry) {
  std::string_view rest;
  if (entry.starts_with("https://")) {
    rest = entry.substr(8);
  } else if (entry.starts_with("http://")) {
    rest = entry.substr(7);
  } else {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}\": must start with https:// or http://", entry));
  }
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}\": must name a host and end its prefix with \"/\" "
                            "(e.g. https://hooks.example.org/)",
                            entry));
  }
  if (!entry.ends_with("/")) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}\": must end with \"/\" so that it matches whole path "
                            "segments",
                            entry));
  }
  if (rest.substr(0, slash).find('@') != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("\"{}\": must not hold a user name (\"@\")", entry));
  }
  return {};
}

Result<void> CheckWebhookTarget(std::string_view url, const std::vector<std::string>& allow) {
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '\\' || c == 0x7f) {
      return Fail(ErrorCode::kInvalidArgument,
                  "webhook: must not hold spaces, control characters or \"\\\"");
    }
  }
  if (url.find("/../") != std::string_view::npos || url.ends_with("/..") ||
      url.find("/./") != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument, "webhook: must not hold \".\" or \"..\" segments");
  }
  for (const std::string& prefix : allow) {
    if (url.starts_with(prefix)) return {};
  }
  return Fail(ErrorCode::kPermissionDenied,
              fmt::format("webhook {}: not allowed by {} in config.json{}", url, kWebhookAllowKey,
                          allow.empty() ? " (empty: no webhook target is allowed)"
                                        : " (ask an admin to add its prefix)"));
}

}  // namespace fabu::coordinator
