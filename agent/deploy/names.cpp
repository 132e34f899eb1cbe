#include "agent/deploy/names.hpp"

#include <fmt/format.h>

#include "agent/common/utf8.hpp"
#include "packaging/manifest.hpp"
#include "protocol/version.hpp"

namespace fabu::agent {

namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

Result<void> CheckDeploymentId(std::string_view id, std::string_view what) {
  bool ok = !id.empty() && id.size() <= kMaxIdLength && IsAlnum(id.front());
  for (char c : id) {
    if (!ok) break;
    ok = IsAlnum(c) || c == '.' || c == '_' || c == ':' || c == '-';
  }
  if (ok) return {};
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("{} {} is not an id: 1 to {} of A-Z, a-z, 0-9, '.', '_', ':' and '-', "
                          "starting with a letter or digit",
                          what, Quoted(id), kMaxIdLength));
}

Result<void> CheckAppName(std::string_view app) {
  if (auto ok = packaging::CheckPackageName(app); !ok) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("app {}: {}", Quoted(app), ok.error().message()));
  }
  return {};
}

bool IsPackageId(std::string_view id) {
  return id.size() == 64 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

Result<void> CheckPackageId(std::string_view id) {
  if (IsPackageId(id)) return {};
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("package id {} is not a SHA-256 (64 lower-case hex digits)", Quoted(id)));
}

Result<void> CheckAssignment(const protocol::Assignment& a) {
  if (auto ok = CheckDeploymentId(a.deployment); !ok) return ok;
  if (!a.release.empty()) {
    if (auto ok = CheckDeploymentId(a.release, "release id"); !ok) return ok;
  }
  const bool install = a.kind == protocol::DeploymentKind::kInstall;
  if (!a.app.empty() || (!install && a.package_id.empty())) {
    if (auto ok = CheckAppName(a.app); !ok) return ok;
  }
  if (!a.version.empty()) {
    if (auto ok = protocol::Version::Parse(a.version); !ok) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("version {}: {}", Quoted(a.version), ok.error().message()));
    }
  }
  if (!a.package_id.empty() || install) {
    if (auto ok = CheckPackageId(a.package_id); !ok) return ok;
  }
  return {};
}

}  // namespace fabu::agent
