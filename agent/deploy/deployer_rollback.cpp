// Rollback deployments: the coordinator asks a host to restore the release
// it kept before the current one (deployer.hpp, docs/agent.md).
#include <fmt/format.h>

#include "agent/deploy/deployer.hpp"
#include "agent/deploy/deployer_context.hpp"
#include "agent/deploy/fault_injection.hpp"
#include "agent/deploy/names.hpp"
#include "packaging/package.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;
using detail::PreviousText;
using protocol::Version;

Result<DeploymentOutcome> Deployer::RollBack(const DeploymentRequest& request) {
  Context ctx;
  ctx.deployment = request.deployment;
  ctx.next_sequence = journal_.NextSequence(ctx.deployment);
  ctx.kind = DeploymentKind::kRollback;
  ctx.app = request.app;
  // The app is a directory under the apps root: a name that is not a
  // package name (`../..`, `/etc`) touches nothing (names.hpp).
  if (!ctx.app.empty()) {
    if (auto ok = CheckAppName(ctx.app); !ok) {
      ctx.app.clear();
      return Refuse(ctx, ok.error());
    }
  }
  std::optional<Version> wanted;
  std::string wanted_manifest;
  if (!request.package.empty()) {
    ctx.package = fs::absolute(request.package).string();
    ctx.package_sha256 = request.package_sha256;
    auto verified = VerifyForHost(request);
    if (!verified) return Refuse(ctx, verified.error());
    if (!ctx.app.empty() && ctx.app != verified->manifest.name) {
      return Refuse(
          ctx, Error(ErrorCode::kInvalidArgument,
                     fmt::format("the package is {}, not {}", verified->manifest.name, ctx.app)));
    }
    ctx.app = verified->manifest.name;
    wanted = verified->manifest.version;
    wanted_manifest = verified->manifest_json;
    ctx.version = wanted;
  }
  auto current = layout_.CurrentVersion(ctx.app);
  if (!current) return Refuse(ctx, current.error());
  if (!*current) {
    return Refuse(ctx, Error(ErrorCode::kFailedPrecondition,
                             fmt::format("{} has no current release on this host; there is "
                                         "nothing to roll back",
                                         ctx.app)));
  }
  auto releases = layout_.Releases(ctx.app);
  if (!releases) return Refuse(ctx, releases.error());
  std::optional<Version> target;
  for (const auto& v : *releases) {
    if (v < **current && (!wanted || v == *wanted)) target = v;
  }
  if (!target) {
    return Refuse(ctx,
                  Error(ErrorCode::kFailedPrecondition,
                        wanted ? fmt::format("{} {} is not a release older than the current "
                                             "{} kept on this host; it cannot be restored",
                                             ctx.app, wanted->ToString(), (*current)->ToString())
                               : fmt::format("no release of {} older than the current {} is "
                                             "kept on this host; nothing to restore",
                                             ctx.app, (*current)->ToString())));
  }
  // Only a release this agent installed and verified itself is restored:
  // its signed manifest, kept when it was installed, says so; and a package
  // named for the rollback must be the very one that was installed.
  if (auto kept = KeptManifest(ctx.app, *target); !kept) {
    return Refuse(ctx, Error(ErrorCode::kFailedPrecondition,
                             fmt::format("{} {} cannot be restored: {}; the agent restores only "
                                         "releases it installed and verified itself",
                                         ctx.app, target->ToString(), kept.error().message())));
  }
  if (wanted) {
    if (auto same = CheckSameContent(ctx.app, *target, request.package_sha256, wanted_manifest);
        !same) {
      return Refuse(ctx, same.error());
    }
  }
  ctx.version = target;
  ctx.previous = *current;

  InFlightDeployment in_flight{ctx.deployment,           ctx.kind,        ctx.package,
                               ctx.package_sha256,       ctx.app,         ctx.VersionText(),
                               ctx.previous->ToString(), Step::kVerified, std::nullopt,
                               ctx.next_sequence};
  const DeploymentEvent event = MakeEvent(
      ctx, Step::kVerified, fmt::format("{} {} is kept on this host", ctx.app, target->ToString()));
  if (auto ok = journal_.Begin(in_flight, event); !ok) return std::unexpected(ok.error());
  CrashPoint(Step::kVerified);
  sink_.Publish(event);
  return RestoreKept(ctx, /*announce=*/true);
}

Result<DeploymentOutcome> Deployer::RestoreKept(Context& ctx, bool announce) {
  if (announce) {
    const std::string note = fmt::format("restoring {} {} (leaving {})", ctx.app,
                                         ctx.version->ToString(), PreviousText(ctx.previous));
    if (auto ok = Enter(ctx, Step::kRollingBack, note); !ok) return std::unexpected(ok.error());
  }
  auto phase = Restore(ctx, *ctx.version, *ctx.previous);
  if (!phase) return std::unexpected(phase.error());
  if (*phase) {
    if (auto e = Enter(ctx, Step::kRollbackFailed, (*phase)->reason, (*phase)->output); !e) {
      return std::unexpected(e.error());
    }
    return Finish(ctx, Step::kRollbackFailed, (*phase)->reason);
  }
  const std::string note = fmt::format("{} {} restored", ctx.app, ctx.version->ToString());
  if (auto e = Enter(ctx, Step::kRolledBack, note, ctx.last_output); !e) {
    return std::unexpected(e.error());
  }
  return Finish(ctx, Step::kRolledBack, note);
}

}  // namespace fabu::agent
