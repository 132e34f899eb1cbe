#include "agent/install/install_layout.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "packaging/manifest.hpp"
#include "platform/fs/files.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;
using protocol::Version;

namespace {

constexpr std::string_view kReleases = "releases";
constexpr std::string_view kCurrentTmpPrefix = "current.tmp-";

std::string Errno() { return std::strerror(errno); }

std::string RandomSuffix() {
  static std::mt19937_64 generator{std::random_device{}()};
  return fmt::format("{:016x}", generator());
}

}  // namespace

InstallLayout::InstallLayout(fs::path apps_root) : apps_root_(std::move(apps_root)) {}

fs::path InstallLayout::AppDir(const std::string& app) const { return apps_root_ / app; }

fs::path InstallLayout::ReleaseDir(const std::string& app, const Version& v) const {
  return AppDir(app) / kReleases / v.ToString();
}

fs::path InstallLayout::ManifestPath(const std::string& app, const Version& v) const {
  return AppDir(app) / "manifests" / (v.ToString() + ".json");
}

fs::path InstallLayout::PackageIdPath(const std::string& app, const Version& v) const {
  return AppDir(app) / "manifests" / (v.ToString() + ".id");
}

Result<std::optional<std::string>> InstallLayout::RecordedPackageId(const std::string& app,
                                                                    const Version& v) const {
  const fs::path path = PackageIdPath(app, v);
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::optional<std::string>();
  auto text = platform::ReadWholeFile(path);
  if (!text) return std::unexpected(text.error());
  std::string id = *text;
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  if (id.size() != 64 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Fail(
        ErrorCode::kIntegrity,
        fmt::format("{} does not hold a package id; the agent did not write it", path.string()));
  }
  return std::optional<std::string>(std::move(id));
}

fs::path InstallLayout::StagingDir(const std::string& app, const Version& v) const {
  return AppDir(app) / (".staging-" + v.ToString());
}

fs::path InstallLayout::CurrentLink(const std::string& app) const {
  return AppDir(app) / "current";
}

Result<std::optional<Version>> InstallLayout::CurrentVersion(const std::string& app) const {
  const fs::path link = CurrentLink(app);
  std::error_code ec;
  const auto status = fs::symlink_status(link, ec);
  if (ec || status.type() == fs::file_type::not_found) return std::optional<Version>{};
  if (status.type() != fs::file_type::symlink) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{} is not a symlink; the agent did not make this tree "
                            "(move it away to let the agent manage {})",
                            link.string(), app));
  }
  const fs::path target = fs::read_symlink(link, ec);
  if (ec) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot read link {}: {}", link.string(), ec.message()));
  }
  auto parent = target.parent_path();
  if (parent != fs::path(kReleases)) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{} points to {}, not into releases/", link.string(), target.string()));
  }
  auto version = Version::Parse(target.filename().string());
  if (!version) return std::unexpected(version.error().WithContext(link.string()));
  return std::optional<Version>(*version);
}

Result<std::vector<Version>> InstallLayout::Releases(const std::string& app) const {
  std::vector<Version> versions;
  const fs::path dir = AppDir(app) / kReleases;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return versions;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    if (auto v = Version::Parse(it->path().filename().string())) versions.push_back(*v);
  }
  if (ec)
    return Fail(ErrorCode::kIo, fmt::format("cannot list {}: {}", dir.string(), ec.message()));
  std::ranges::sort(versions);
  return versions;
}

Result<void> InstallLayout::Prepare(const std::string& app) const {
  if (auto ok = platform::MakeDirectories(AppDir(app) / kReleases); !ok) return ok;
  if (auto ok = platform::MakeDirectories(AppDir(app) / "manifests"); !ok) return ok;
  if (auto ok = platform::SyncDirectory(AppDir(app)); !ok) return ok;
  return platform::SyncDirectory(apps_root_);
}

Result<void> InstallLayout::SwitchCurrent(const std::string& app, const Version& v) const {
  std::error_code ec;
  if (!fs::is_directory(ReleaseDir(app, v), ec)) {
    return Fail(ErrorCode::kNotFound, fmt::format("cannot activate {} {}: {} is missing", app,
                                                  v.ToString(), ReleaseDir(app, v).string()));
  }
  const fs::path target = fs::path(kReleases) / v.ToString();
  const fs::path temp = AppDir(app) / (std::string(kCurrentTmpPrefix) + RandomSuffix());
  if (::symlink(target.c_str(), temp.c_str()) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot create link {}: {}", temp.string(), Errno()));
  }
  if (platform::CurrentFileSystem().Rename(temp.c_str(), CurrentLink(app).c_str()) != 0) {
    const std::string reason = Errno();
    ::unlink(temp.c_str());
    return Fail(ErrorCode::kIo,
                fmt::format("cannot switch {}: {}", CurrentLink(app).string(), reason));
  }
  return platform::SyncDirectory(AppDir(app));
}

Result<void> InstallLayout::RemoveCurrent(const std::string& app) const {
  if (::unlink(CurrentLink(app).c_str()) != 0 && errno != ENOENT) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot remove {}: {}", CurrentLink(app).string(), Errno()));
  }
  return platform::SyncDirectory(AppDir(app));
}

Result<void> InstallLayout::PlaceRelease(const std::string& app, const Version& v,
                                         const fs::path& staging) const {
  const fs::path dest = ReleaseDir(app, v);
  std::error_code ec;
  if (fs::exists(dest, ec)) {
    auto current = CurrentVersion(app);
    if (!current) return std::unexpected(current.error());
    if (*current == v) {
      return Fail(ErrorCode::kConflict,
                  fmt::format("refusing to replace {}: it is the current release", dest.string()));
    }
    // A kept release of the same version: move it aside, then drop it.
    const fs::path trash = AppDir(app) / (".trash-" + v.ToString() + "-" + RandomSuffix());
    if (platform::CurrentFileSystem().Rename(dest.c_str(), trash.c_str()) != 0) {
      return Fail(ErrorCode::kIo, fmt::format("cannot move {} aside: {}", dest.string(), Errno()));
    }
    if (auto ok = platform::RemoveTreeDurably(trash); !ok) return ok;
  }
  if (platform::CurrentFileSystem().Rename(staging.c_str(), dest.c_str()) != 0) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot move {} to {}: {}", staging.string(), dest.string(), Errno()));
  }
  if (auto ok = platform::SyncDirectory(dest.parent_path()); !ok) return ok;
  return platform::SyncDirectory(AppDir(app));
}

Result<void> InstallLayout::RemoveRelease(const std::string& app, const Version& v) const {
  auto current = CurrentVersion(app);
  if (!current) return std::unexpected(current.error());
  if (*current == v) {
    return Fail(ErrorCode::kConflict,
                fmt::format("refusing to remove {} {}: it is current", app, v.ToString()));
  }
  // Move the tree out of releases/ first so a crash mid-removal leaves only
  // scratch, never a half-deleted release that looks kept.
  const fs::path dir = ReleaseDir(app, v);
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    const fs::path trash = AppDir(app) / (".trash-" + v.ToString() + "-" + RandomSuffix());
    if (platform::CurrentFileSystem().Rename(dir.c_str(), trash.c_str()) != 0) {
      return Fail(ErrorCode::kIo, fmt::format("cannot move {} aside: {}", dir.string(), Errno()));
    }
    if (auto ok = platform::SyncDirectory(dir.parent_path()); !ok) return ok;
    if (auto ok = platform::RemoveTreeDurably(trash); !ok) return ok;
  }
  for (const fs::path& record : {ManifestPath(app, v), PackageIdPath(app, v)}) {
    if (::unlink(record.c_str()) != 0 && errno != ENOENT) {
      return Fail(ErrorCode::kIo, fmt::format("cannot remove {}: {}", record.string(), Errno()));
    }
  }
  return {};
}

Result<void> InstallLayout::RemoveLeftovers(const std::string& app) const {
  const fs::path dir = AppDir(app);
  std::error_code ec;
  if (!fs::exists(dir, ec)) return {};
  std::vector<fs::path> scratch;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with('.') || name.starts_with(kCurrentTmpPrefix)) scratch.push_back(it->path());
  }
  if (ec)
    return Fail(ErrorCode::kIo, fmt::format("cannot list {}: {}", dir.string(), ec.message()));
  for (const auto& path : scratch) {
    if (auto ok = platform::RemoveTreeDurably(path); !ok) return ok;
  }
  return {};
}

Result<std::vector<Version>> InstallLayout::Prune(const std::string& app, std::size_t keep,
                                                  const std::optional<Version>& previous) const {
  auto releases = Releases(app);
  if (!releases) return std::unexpected(releases.error());
  auto current = CurrentVersion(app);
  if (!current) return std::unexpected(current.error());
  std::vector<Version> newest_first(releases->rbegin(), releases->rend());
  std::vector<Version> removed;
  for (std::size_t i = 0; i < newest_first.size(); ++i) {
    const Version& v = newest_first[i];
    if (i < keep || v == *current || v == previous) continue;
    if (auto ok = RemoveRelease(app, v); !ok) return std::unexpected(ok.error());
    removed.push_back(v);
  }
  return removed;
}

Result<std::vector<InstalledApp>> InstallLayout::Inventory() const {
  std::vector<InstalledApp> apps;
  std::error_code ec;
  if (!fs::exists(apps_root_, ec)) return apps;
  for (fs::directory_iterator it(apps_root_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec) || !fs::is_directory(it->path() / kReleases, ec)) continue;
    InstalledApp app;
    app.name = it->path().filename().string();
    if (!packaging::CheckPackageName(app.name)) continue;
    auto current = CurrentVersion(app.name);
    if (!current) return std::unexpected(current.error());
    app.current = *current;
    auto releases = Releases(app.name);
    if (!releases) return std::unexpected(releases.error());
    app.releases = std::move(*releases);
    apps.push_back(std::move(app));
  }
  if (ec) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot list {}: {}", apps_root_.string(), ec.message()));
  }
  std::ranges::sort(apps, {}, &InstalledApp::name);
  return apps;
}

Result<void> InstallLayout::RemoveAppIfEmpty(const std::string& app) const {
  const fs::path dir = AppDir(app);
  std::error_code ec;
  for (const char* sub : {"releases", "manifests"}) {
    if (fs::exists(dir / sub, ec) && !fs::is_empty(dir / sub, ec)) return {};
  }
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name != "releases" && name != "manifests") return {};
  }
  return platform::RemoveTreeDurably(dir);
}

}  // namespace fabu::agent
