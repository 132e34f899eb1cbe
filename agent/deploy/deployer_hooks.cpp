// The package's hooks: which ones a version has (from its kept, signed
// manifest), and running one as a step of the journal (deployer.hpp).
#include <fmt/format.h>

#include "agent/common/log.hpp"
#include "agent/deploy/deployer.hpp"
#include "agent/deploy/deployer_context.hpp"
#include "packaging/package.hpp"
#include "platform/fs/files.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;
using detail::PreviousText;
using packaging::Manifest;
using protocol::Version;

Result<Manifest> Deployer::KeptManifest(const std::string& app, const Version& version) const {
  const fs::path path = layout_.ManifestPath(app, version);
  auto json = platform::ReadWholeFile(path);
  if (!json) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("no signed manifest was kept for it ({} is missing)", path.string()));
  }
  auto manifest = Manifest::Parse(*json);
  if (!manifest) return std::unexpected(manifest.error().WithContext(path.string()));
  if (manifest->name != app || manifest->version != version) {
    return Fail(ErrorCode::kIntegrity, fmt::format("{} is the manifest of {} {}", path.string(),
                                                   manifest->name, manifest->version.ToString()));
  }
  return manifest;
}

Result<void> Deployer::CheckSameContent(const std::string& app, const Version& version,
                                        const std::string& package_id,
                                        const std::string& manifest_json) const {
  auto recorded = layout_.RecordedPackageId(app, version);
  if (!recorded) return std::unexpected(recorded.error());
  if (*recorded) {
    if (**recorded == package_id) return {};
    return Fail(ErrorCode::kConflict,
                fmt::format("{} {} is installed here as package {}, not package {}: the same "
                            "name and version with other content; refused (a changed package "
                            "needs a new version)",
                            app, version.ToString(), **recorded, package_id));
  }
  // Installed before package ids were recorded: the signed manifest, which
  // holds the digest of every file, tells whether the content is the same.
  auto kept = platform::ReadWholeFile(layout_.ManifestPath(app, version));
  if (kept && *kept == manifest_json) return {};
  return Fail(ErrorCode::kConflict,
              fmt::format("{} {} is installed here with another signed manifest than package {} "
                          "(its package id was not recorded): the same name and version with "
                          "other content; refused (a changed package needs a new version)",
                          app, version.ToString(), package_id));
}

std::map<std::string, std::string> Deployer::HooksOf(const std::string& app,
                                                     const Version& version) const {
  // Only the hooks of the signed manifest the agent kept when it installed
  // the release: never a file merely found in the tree.
  auto manifest = KeptManifest(app, version);
  if (!manifest) {
    log::Warn("{} {}: running no hooks: {}", app, version.ToString(), manifest.error().message());
    return {};
  }
  return manifest->hooks;
}

Deployer::Phase Deployer::RunHook(Context& ctx, const std::string& name, Step reported,
                                  const std::map<std::string, std::string>& hooks,
                                  const fs::path& root, const Version& version,
                                  const std::optional<Version>& previous,
                                  std::chrono::milliseconds timeout, int attempts) {
  auto it = hooks.find(name);
  if (it == hooks.end()) return std::optional<StepFailure>();
  HookInvocation invocation;
  invocation.name = name;
  invocation.program = root / it->second;
  invocation.working_dir = root;
  invocation.timeout = timeout;
  const fs::path release = layout_.ReleaseDir(ctx.app, version);
  invocation.env = {
      {"FABU_APP", ctx.app},
      {"FABU_VERSION", version.ToString()},
      {"FABU_RELEASE_DIR", release.string()},
      {"FABU_PREVIOUS_VERSION", PreviousText(previous)},
      {"FABU_PREVIOUS_DIR", previous ? layout_.ReleaseDir(ctx.app, *previous).string() : ""},
      {"FABU_APPS_ROOT", layout_.apps_root().string()},
      {"FABU_HOOK", name},
  };
  if (root != release) invocation.env.emplace_back("FABU_STAGING_DIR", root.string());

  std::string last_reason;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    auto result = hooks_.Run(invocation);
    if (!result) {
      return std::optional<StepFailure>(StepFailure{reported, result.error().message(), {}});
    }
    ctx.last_output = result->output_tail;
    log::Info("deployment {}: {} hook of {} {} {} (attempt {} of {}, {} bytes of output)",
              ctx.deployment, name, ctx.app, version.ToString(),
              result->ok() ? "passed" : result->Describe(), attempt, attempts,
              result->output_bytes);
    if (result->ok()) return std::optional<StepFailure>();
    last_reason = attempts > 1 ? fmt::format("{} hook {} (attempt {} of {})", name,
                                             result->Describe(), attempt, attempts)
                               : fmt::format("{} hook {}", name, result->Describe());
    if (attempt < attempts) clock_.SleepFor(settings_.health_check_delay);
  }
  return std::optional<StepFailure>(StepFailure{reported, last_reason, ctx.last_output});
}

}  // namespace fabu::agent
