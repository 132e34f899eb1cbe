// The on-disk layout of installed applications under an apps root:
//
//   <apps_root>/<name>/releases/<version>/   one directory per kept release
//   <apps_root>/<name>/manifests/<version>.json  the signed manifest of it
//   <apps_root>/<name>/manifests/<version>.id    its package id (the SHA-256
//                                                of the package file)
//   <apps_root>/<name>/current -> releases/<version>   the active release
//   <apps_root>/<name>/.staging-<version>/   extraction in progress
//
// `current` is a relative symlink replaced atomically: a new link
// `current.tmp-XXXXXX` is renamed over it, then the app directory is synced,
// so a reader (or a crash) sees the old target or the new one, never neither.
// Names beginning with '.' and `current.tmp-*` in an app directory are the
// agent's scratch space and are removed by `RemoveLeftovers`.
//
// The layout holds no state besides the path; it is cheap to copy. It does not
// lock: the agent serializes deployments (one at a time per data directory).
// Errors are kIo with the path, or kIntegrity when the tree is not one the
// agent made (a `current` that is not a link into releases/).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "protocol/error.hpp"
#include "protocol/version.hpp"

namespace fabu::agent {

struct InstalledApp {
  std::string name;
  std::optional<protocol::Version> current;  // none: releases kept but none active
  std::vector<protocol::Version> releases;   // kept releases, ascending
};

class InstallLayout {
 public:
  explicit InstallLayout(std::filesystem::path apps_root);

  const std::filesystem::path& apps_root() const { return apps_root_; }
  std::filesystem::path AppDir(const std::string& app) const;
  std::filesystem::path ReleaseDir(const std::string& app, const protocol::Version& v) const;
  std::filesystem::path ManifestPath(const std::string& app, const protocol::Version& v) const;
  std::filesystem::path PackageIdPath(const std::string& app, const protocol::Version& v) const;
  std::filesystem::path StagingDir(const std::string& app, const protocol::Version& v) const;
  std::filesystem::path CurrentLink(const std::string& app) const;

  // The version `current` points to; none when the app has no `current`.
  Result<std::optional<protocol::Version>> CurrentVersion(const std::string& app) const;

  // The package id recorded for a kept release when it was installed; none
  // when no id was recorded (a release installed before ids were kept).
  // kIntegrity when the record is not a package id.
  Result<std::optional<std::string>> RecordedPackageId(const std::string& app,
                                                       const protocol::Version& v) const;

  // Kept releases, ascending. Entries that are not versions are ignored.
  Result<std::vector<protocol::Version>> Releases(const std::string& app) const;

  // Creates <app>/releases and <app>/manifests.
  Result<void> Prepare(const std::string& app) const;

  // Points `current` at releases/<v> atomically (the release must exist).
  Result<void> SwitchCurrent(const std::string& app, const protocol::Version& v) const;

  // Removes `current` (first install rolled back: nothing is installed).
  Result<void> RemoveCurrent(const std::string& app) const;

  // Renames a fully extracted `staging` to releases/<v>. A release dir of the
  // same version already there (a kept, non-current release) is moved aside
  // and removed; refuses to replace the current release.
  Result<void> PlaceRelease(const std::string& app, const protocol::Version& v,
                            const std::filesystem::path& staging) const;

  // Removes releases/<v>, its manifest and package id; refuses the current release.
  Result<void> RemoveRelease(const std::string& app, const protocol::Version& v) const;

  // Removes scratch entries (.staging-*, extraction temp dirs, .trash-*,
  // current.tmp-*). Safe to call at any time no deployment is running.
  Result<void> RemoveLeftovers(const std::string& app) const;

  // Keeps the newest `keep` releases (by version) plus the current and
  // `previous` ones whatever their age; removes the rest. Returns the removed.
  Result<std::vector<protocol::Version>> Prune(
      const std::string& app, std::size_t keep,
      const std::optional<protocol::Version>& previous) const;

  // Every app under the root with its current version and kept releases.
  // Directories whose name is not a package name are not apps the agent
  // made, and are left out.
  Result<std::vector<InstalledApp>> Inventory() const;

  // Removes the app directory when nothing is left in it but empty
  // releases/ and manifests/ (after a first install was rolled back).
  Result<void> RemoveAppIfEmpty(const std::string& app) const;

 private:
  std::filesystem::path apps_root_;
};

}  // namespace fabu::agent
