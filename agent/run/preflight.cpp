#include "agent/run/preflight.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/install/install_layout.hpp"
#include "packaging/manifest.hpp"
#include "protocol/version.hpp"

namespace fabu::agent {
namespace {

namespace fs = std::filesystem;

std::string Bytes(std::uint64_t n) {
  if (n >= (1ULL << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(n) / (1ULL << 30));
  if (n >= (1ULL << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1ULL << 20));
  if (n >= (1ULL << 10)) return fmt::format("{:.1f} KiB", static_cast<double>(n) / (1ULL << 10));
  return fmt::format("{} bytes", n);
}

struct Space {
  std::uint64_t free = 0;
  dev_t device = 0;
};

// The free space of the file system holding `path` (or its nearest existing
// parent), for an unprivileged writer.
std::optional<Space> SpaceOf(fs::path path) {
  std::error_code ec;
  while (!path.empty() && !fs::exists(path, ec)) path = path.parent_path();
  struct statvfs vfs {};
  struct stat st {};
  if (path.empty() || ::statvfs(path.c_str(), &vfs) != 0 || ::stat(path.c_str(), &st) != 0) {
    return std::nullopt;
  }
  return Space{static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize, st.st_dev};
}

// With a fifth more: what extraction, the journal and the next write need
// beside the bytes themselves.
std::uint64_t WithMargin(std::uint64_t bytes) { return bytes + bytes / 5; }

}  // namespace

protocol::PreflightAnswer AnswerPreflight(const protocol::PreflightRequest& request,
                                          const PreflightContext& context) {
  protocol::PreflightAnswer answer;
  answer.id = request.id;
  auto& reasons = answer.reasons;

  // Free space.
  const auto apps = SpaceOf(context.apps_root);
  const auto downloads = SpaceOf(context.downloads);
  if (!apps || !downloads) {
    reasons.push_back(fmt::format("cannot read the free space of {}",
                                  (!apps ? context.apps_root : context.downloads).string()));
  } else {
    answer.free_bytes = apps->free;
    if (apps->device == downloads->device) {
      const std::uint64_t needed = WithMargin(request.package_size + request.unpacked_size);
      if (apps->free < needed) {
        reasons.push_back(fmt::format(
            "not enough free space in {}: {} free, {} needed (the package {} and its tree {}, "
            "and a fifth more)",
            context.apps_root.string(), Bytes(apps->free), Bytes(needed),
            Bytes(request.package_size), Bytes(request.unpacked_size)));
      }
    } else {
      if (apps->free < WithMargin(request.unpacked_size)) {
        reasons.push_back(fmt::format(
            "not enough free space in {}: {} free, {} needed (the tree {} and a fifth more)",
            context.apps_root.string(), Bytes(apps->free), Bytes(WithMargin(request.unpacked_size)),
            Bytes(request.unpacked_size)));
      }
      if (downloads->free < WithMargin(request.package_size)) {
        reasons.push_back(fmt::format(
            "not enough free space in {}: {} free, {} needed (the package {} and a fifth more)",
            context.downloads.string(), Bytes(downloads->free),
            Bytes(WithMargin(request.package_size)), Bytes(request.package_size)));
      }
    }
  }

  // The package's targets.
  if (auto ok = CheckTargets(request.targets, context.host); !ok) {
    reasons.push_back(ok.error().message());
  }

  // The version installed now. The app's name comes from the network: it
  // becomes a path only once it is a package name (docs/agent.md "What the
  // agent checks").
  auto version = protocol::Version::Parse(request.version);
  if (auto ok = packaging::CheckPackageName(request.app); !ok) {
    reasons.push_back(fmt::format("app: {}", ok.error().message()));
  } else if (!version) {
    reasons.push_back(
        fmt::format("version \"{}\": {}", request.version, version.error().message()));
  } else {
    const InstallLayout layout(context.apps_root);
    auto current = layout.CurrentVersion(request.app);
    if (!current) {
      reasons.push_back(fmt::format("cannot read the installed version of {}: {}", request.app,
                                    current.error().message()));
    } else if (*current) {
      answer.installed_version = (*current)->ToString();
      if (**current > *version) {
        reasons.push_back(fmt::format("{} {} is installed: {} would be a downgrade", request.app,
                                      answer.installed_version, request.version));
      }
    }
  }

  // The publisher key.
  if (context.trust == nullptr || context.trust->Find(request.key_id) == nullptr) {
    reasons.push_back(
        fmt::format("the package is signed by key {}, which this agent does not trust (agent.json "
                    "trusted_keys)",
                    request.key_id));
  }

  // A writable apps root.
  std::error_code ec;
  fs::create_directories(context.apps_root, ec);
  const fs::path probe = context.apps_root / fmt::format(".preflight-{}", ::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    reasons.push_back(fmt::format("the apps root {} is not writable: {}",
                                  context.apps_root.string(), std::strerror(errno)));
  } else {
    ::close(fd);
    ::unlink(probe.c_str());
  }

  // Another deployment in progress.
  if (context.in_flight) {
    reasons.push_back(fmt::format("deployment {} is in progress on this host", *context.in_flight));
  }

  answer.ready = reasons.empty();
  return answer;
}

}  // namespace fabu::agent
