// The Deployer's install: verify, extract, place, switch, activate, check
// and observe, each step journaled before it is done; a failure rolls back
// to the kept release. Its other parts: deployer_prepared.cpp (extraction
// during the download), deployer_rollback.cpp, deployer_hooks.cpp and
// deployer_recovery.cpp.
#include "agent/deploy/deployer.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "agent/common/log.hpp"
#include "agent/common/utf8.hpp"
#include "agent/deploy/deployer_context.hpp"
#include "agent/deploy/fault_injection.hpp"
#include "agent/deploy/names.hpp"
#include "packaging/package.hpp"
#include "platform/fs/files.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;
using detail::DiscardStagedTree;
using packaging::Manifest;
using protocol::Version;

namespace detail {

void DiscardStagedTree(const InstallLayout& layout, const std::string& app) {
  auto ok = layout.RemoveLeftovers(app);
  if (ok) ok = layout.RemoveAppIfEmpty(app);
  if (!ok) log::Warn("removing an unused extraction: {}", ok.error().message());
}

}  // namespace detail

Deployer::Deployer(DeploymentSettings settings, packaging::TrustStore trust, HostFacts host,
                   Journal& journal, EventSink& sink, HookRunner& hooks, Clock& clock)
    : settings_(std::move(settings)),
      trust_(std::move(trust)),
      host_(std::move(host)),
      layout_(fs::absolute(settings_.apps_root).lexically_normal()),
      journal_(journal),
      sink_(sink),
      hooks_(hooks),
      clock_(clock) {
  settings_.retained_releases = std::max<std::size_t>(settings_.retained_releases, 2);
  settings_.health_check_attempts = std::max(settings_.health_check_attempts, 1);
}

DeploymentEvent Deployer::MakeEvent(Context& ctx, Step step, std::string message,
                                    std::string output, std::optional<Step> failed) {
  DeploymentEvent event;
  event.deployment = ctx.deployment;
  event.sequence = ctx.next_sequence++;
  event.step = step;
  event.failed_step = failed;
  event.app = ctx.app;
  event.version = ctx.VersionText();
  // Messages quote what failed (file names, hook output, a coordinator's
  // answer): foreign bytes, made valid UTF-8 before they go into JSON.
  event.message = ValidUtf8(message);
  event.output = ValidUtf8(output);
  event.time = clock_.Now();
  return event;
}

Result<void> Deployer::Enter(Context& ctx, Step step, std::string message, std::string output) {
  std::optional<DeploymentEvent> event;
  if (IsReportedStep(step)) event = MakeEvent(ctx, step, std::move(message), std::move(output));
  if (auto ok = journal_.Record(step, event); !ok) return ok;
  CrashPoint(step);
  if (event) sink_.Publish(*event);
  return {};
}

Result<void> Deployer::EnterHookPoint(Context& ctx, Step point,
                                      const std::map<std::string, std::string>& hooks,
                                      const std::string& name) {
  // A hook point only refines where in its reported step a deployment
  // stopped, and recovery treats both alike; without the hook there is
  // nothing to refine, so no journal write (two fsyncs) is spent on it.
  if (!hooks.contains(name)) return {};
  return Enter(ctx, point);
}

Result<DeploymentOutcome> Deployer::Deploy(const DeploymentRequest& request) {
  if (const auto& in_flight = journal_.in_flight()) {
    return Fail(ErrorCode::kConflict,
                fmt::format("deployment {} is still in flight; recover it before starting {}",
                            in_flight->deployment, request.deployment));
  }
  if (request.deployment.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "a deployment needs an id (--deployment)");
  }
  // Events and the journal carry it; `run` refuses such an assignment first.
  if (auto ok = CheckDeploymentId(request.deployment); !ok) return std::unexpected(ok.error());
  if (!request.package.empty() && request.package_sha256.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "a package comes with its expected SHA-256, the id the coordinator assigned "
                "(--sha256)");
  }
  if (request.kind == DeploymentKind::kInstall) {
    if (request.package.empty()) {
      return Fail(ErrorCode::kInvalidArgument, "an install needs a package file (--package)");
    }
    return Install(request);
  }
  if (request.package.empty() && request.app.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "a rollback names the app to roll back (--app) or the kept version's package");
  }
  return RollBack(request);
}

Result<packaging::VerifiedPackage> Deployer::VerifyForHost(const DeploymentRequest& request,
                                                           const packaging::VerifiedPackage* read) {
  // Signature (own keys), expiry and the file's digest against the assigned id;
  // every file's content is checked by the single extraction pass that follows,
  // before anything is activated.
  const packaging::VerifyOptions options{.now = clock_.Now(), .durable = false};
  Result<packaging::VerifiedPackage> verified =
      read != nullptr ? *read
      : request.package_file_sha256.empty()
          ? packaging::VerifySignatureAndDigest(request.package, trust_, options)
          : packaging::VerifySignature(request.package, trust_, options);
  if (verified && read == nullptr && !request.package_file_sha256.empty()) {
    verified->package_sha256 = request.package_file_sha256;
  }
  if (!verified) {
    return std::unexpected(verified.error().WithContext(
        fmt::format("verifying {}", request.package.filename().string())));
  }
  if (verified->package_sha256 != request.package_sha256) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{}: SHA-256 {} differs from the assigned package id {}; the file "
                            "is not the package that was approved",
                            request.package.filename().string(), verified->package_sha256,
                            request.package_sha256));
  }
  if (auto ok = CheckTargets(verified->manifest.targets, host_); !ok) {
    return std::unexpected(
        ok.error().WithContext(fmt::format("{} {} does not fit this host", verified->manifest.name,
                                           verified->manifest.version.ToString())));
  }
  return verified;
}

Result<DeploymentOutcome> Deployer::Refuse(Context& ctx, const Error& error) {
  if (ctx.staged) {
    DiscardStaged(ctx.staged->verified.manifest.name);
    ctx.staged.reset();
  }
  const DeploymentEvent event = MakeEvent(ctx, Step::kFailed, error.message(), {}, Step::kVerified);
  if (auto ok = journal_.Append(event); !ok) return std::unexpected(ok.error());
  sink_.Publish(event);
  DeploymentOutcome outcome{ctx.deployment, ctx.app, Step::kFailed, std::nullopt, error.message()};
  if (!ctx.app.empty()) {
    if (auto current = layout_.CurrentVersion(ctx.app)) outcome.current = *current;
  }
  return outcome;
}

// ---------------------------------------------------------------------------
// Install

Result<DeploymentOutcome> Deployer::Install(const DeploymentRequest& request) {
  Context ctx;
  ctx.deployment = request.deployment;
  ctx.next_sequence = journal_.NextSequence(ctx.deployment);
  ctx.kind = DeploymentKind::kInstall;
  ctx.package = fs::absolute(request.package).string();
  ctx.package_sha256 = request.package_sha256;

  // A local file whose id nobody computed yet is read once for everything:
  // its tree goes to staging (nothing visible changes) while its id is
  // hashed beside it; the id is then checked at `verified` as usual. When
  // that cannot be done (a refused header, the same version again), the
  // checks below read the file and say why.
  if (request.prepared == nullptr && request.package_file_sha256.empty()) {
    ctx.staged = ExtractLocalFile(request.package);
  }
  auto verified = VerifyForHost(request, ctx.staged ? &ctx.staged->verified : nullptr);
  if (!verified) {
    if (ctx.staged) ctx.app = ctx.staged->verified.manifest.name;
    return Refuse(ctx, verified.error());
  }
  const Manifest& manifest = verified->manifest;
  ctx.app = manifest.name;
  ctx.version = manifest.version;
  ctx.manifest_json = verified->manifest_json;
  if (!request.app.empty() && request.app != manifest.name) {
    return Refuse(ctx,
                  Error(ErrorCode::kInvalidArgument,
                        fmt::format("the package is {} {}, not the assigned app {}", manifest.name,
                                    manifest.version.ToString(), Quoted(request.app))));
  }

  auto current = layout_.CurrentVersion(ctx.app);
  if (!current) return Refuse(ctx, current.error());
  if (*current == manifest.version) {
    // Re-sent or repeated: the host already runs this release, if it runs
    // this very package; the same name and version with another content is
    // refused, never reported as done.
    if (auto same = CheckSameContent(ctx.app, manifest.version, verified->package_sha256,
                                     verified->manifest_json);
        !same) {
      return Refuse(ctx, same.error());
    }
    const std::string note = fmt::format("{} {} is already current; nothing to do", ctx.app,
                                         manifest.version.ToString());
    for (Step step : {Step::kVerified, Step::kSucceeded}) {
      const DeploymentEvent event = MakeEvent(ctx, step, note);
      if (auto ok = journal_.Append(event); !ok) return std::unexpected(ok.error());
      sink_.Publish(event);
    }
    return Finish(ctx, Step::kSucceeded, note);
  }
  if (*current && manifest.version < **current) {
    return Refuse(ctx,
                  Error(ErrorCode::kFailedPrecondition,
                        fmt::format("refusing {} {}: it is lower than the installed {} "
                                    "(anti-downgrade); only a rollback may restore an "
                                    "older release, and only one kept on this host",
                                    ctx.app, manifest.version.ToString(), (*current)->ToString())));
  }
  ctx.previous = *current;

  InFlightDeployment in_flight{ctx.deployment, ctx.kind,          ctx.package,  ctx.package_sha256,
                               ctx.app,        ctx.VersionText(), std::nullopt, Step::kVerified,
                               std::nullopt,   ctx.next_sequence};
  if (ctx.previous) in_flight.previous_version = ctx.previous->ToString();
  const DeploymentEvent event =
      MakeEvent(ctx, Step::kVerified,
                fmt::format("signed by {}; digest, expiry and targets checked", manifest.key_id));
  if (auto ok = journal_.Begin(in_flight, event); !ok) return std::unexpected(ok.error());
  CrashPoint(Step::kVerified);
  sink_.Publish(event);

  auto phase = InstallAndActivate(ctx, request);
  if (phase && !*phase && request.observe.count() > 0) phase = Observe(ctx, request);
  if (!phase) return std::unexpected(phase.error());
  if (*phase) return HandleFailure(ctx, **phase);
  return Succeed(ctx);
}

Deployer::Phase Deployer::Observe(Context& ctx, const DeploymentRequest& request) {
  using std::chrono::seconds;
  const seconds period = request.observe;
  seconds interval = request.observe_interval;
  if (interval.count() <= 0 || interval > period) interval = period;
  const Version& version = *ctx.version;
  if (auto ok =
          Enter(ctx, Step::kObserving,
                fmt::format("health check every {} s for {} s", interval.count(), period.count()));
      !ok) {
    return std::unexpected(ok.error());
  }
  const auto hooks = HooksOf(ctx.app, version);
  const fs::path release = layout_.ReleaseDir(ctx.app, version);
  int checks = 0;
  for (seconds waited{0}; waited < period;) {
    const seconds wait = std::min(interval, period - waited);
    clock_.SleepFor(wait);
    waited += wait;
    ++checks;
    // One attempt: a host that fails while watched is not healthy, whatever
    // a retry might say.
    auto phase = RunHook(ctx, "health_check", Step::kObserving, hooks, release, version,
                         ctx.previous, settings_.health_check_timeout);
    if (!phase) return phase;
    if (*phase) {
      (*phase)->reason = fmt::format("{} (observation check {}, after {} s of {} s)",
                                     (*phase)->reason, checks, waited.count(), period.count());
      return phase;
    }
  }
  return std::optional<StepFailure>();
}

Deployer::Phase Deployer::InstallAndActivate(Context& ctx, const DeploymentRequest& request) {
  const std::string& app = ctx.app;
  const Version& version = *ctx.version;
  auto io_failure = [](Step step, const Error& e) -> Phase {
    return std::optional<StepFailure>(StepFailure{step, e.message(), {}});
  };

  if (auto ok = Enter(ctx, Step::kInstalling); !ok) return std::unexpected(ok.error());
  const fs::path staging = layout_.StagingDir(app, version);
  auto extracted = Extract(ctx, request, staging);
  if (!extracted) return io_failure(Step::kInstalling, extracted.error());
  // Kept beside the release: the hooks and file list of a release to restore.
  if (auto ok =
          platform::WriteFileDurably(layout_.ManifestPath(app, version), extracted->manifest_json);
      !ok) {
    return io_failure(Step::kInstalling, ok.error());
  }
  // And its package id, so that the same name and version are never taken
  // for this content when another package carries them.
  if (auto ok = platform::WriteFileDurably(layout_.PackageIdPath(app, version),
                                           ctx.package_sha256 + "\n");
      !ok) {
    return io_failure(Step::kInstalling, ok.error());
  }
  const auto& hooks = extracted->manifest.hooks;

  if (auto ok = EnterHookPoint(ctx, Step::kPreInstall, hooks, "pre_install"); !ok) {
    return std::unexpected(ok.error());
  }
  auto phase = RunHook(ctx, "pre_install", Step::kInstalling, hooks, staging, version, ctx.previous,
                       settings_.hook_timeout);
  if (!phase || *phase) return phase;

  if (auto ok = layout_.PlaceRelease(app, version, staging); !ok) {
    return io_failure(Step::kInstalling, ok.error());
  }
  const fs::path release = layout_.ReleaseDir(app, version);

  if (auto ok = EnterHookPoint(ctx, Step::kPostInstall, hooks, "post_install"); !ok) {
    return std::unexpected(ok.error());
  }
  phase = RunHook(ctx, "post_install", Step::kInstalling, hooks, release, version, ctx.previous,
                  settings_.hook_timeout);
  if (!phase || *phase) return phase;

  if (auto ok = Enter(ctx, Step::kActivating); !ok) return std::unexpected(ok.error());
  if (auto ok = layout_.SwitchCurrent(app, version); !ok) {
    return io_failure(Step::kActivating, ok.error());
  }
  if (auto ok = EnterHookPoint(ctx, Step::kActivate, hooks, "activate"); !ok) {
    return std::unexpected(ok.error());
  }
  phase = RunHook(ctx, "activate", Step::kActivating, hooks, release, version, ctx.previous,
                  settings_.hook_timeout);
  if (!phase || *phase) return phase;

  if (auto ok = Enter(ctx, Step::kHealthChecking); !ok) return std::unexpected(ok.error());
  if (auto ok = EnterHookPoint(ctx, Step::kHealthCheck, hooks, "health_check"); !ok) {
    return std::unexpected(ok.error());
  }
  return RunHook(ctx, "health_check", Step::kHealthChecking, hooks, release, version, ctx.previous,
                 settings_.health_check_timeout, settings_.health_check_attempts);
}

Result<packaging::VerifiedPackage> Deployer::Extract(Context& ctx, const DeploymentRequest& request,
                                                     const fs::path& staging) {
  std::optional<StagedTree> staged = std::move(ctx.staged);
  ctx.staged.reset();
  const char* when = "while the package was read";
  if (!staged && request.prepared != nullptr) {
    auto prepared = request.prepared->Take();
    when = "while the package downloaded";
    if (prepared) {
      staged = std::move(*prepared);
    } else {
      // Refused or failed (a download that started over, say): extract the
      // package as if nothing had been prepared; a real fault shows again.
      log::Info("deployment {}: extracting {} again: {}", ctx.deployment,
                request.package.filename().string(), prepared.error().message());
    }
  }
  if (staged && staged->staging == staging && staged->verified.manifest_json == ctx.manifest_json) {
    // The package's digest was checked against the assigned id at
    // `verified`, and the tree against the same signed manifest while it
    // was written. Only durability is left: the package file goes first, so
    // the sync does not write back its pages for nothing.
    if (request.package_is_scratch) ::unlink(request.package.c_str());
    if (settings_.durable) {
      if (auto ok = platform::SyncFileSystemOf(staging); !ok) return std::unexpected(ok.error());
      if (auto ok = platform::SyncDirectory(staging.parent_path()); !ok)
        return std::unexpected(ok.error());
    }
    log::Info(
        "deployment {}: the tree was extracted into a private staging directory {}; "
        "nothing is activated before the signature and every digest have been checked",
        ctx.deployment, when);
    return std::move(staged->verified);
  }
  if (staged) {
    log::Info("deployment {}: extracting {} again: the tree extracted {} is not this release's",
              ctx.deployment, request.package.filename().string(), when);
  }
  if (auto ok = layout_.Prepare(ctx.app); !ok) return std::unexpected(ok.error());
  if (auto ok = layout_.RemoveLeftovers(ctx.app); !ok) return std::unexpected(ok.error());
  // The file's digest was checked against the assigned id at `verified`; the
  // extraction checks the payload's digest and every file against the signed
  // manifest, so the same signed manifest means the same package: the whole
  // file is not hashed a second time.
  auto extracted = packaging::ExtractPackage(request.package, trust_, staging,
                                             {.now = clock_.Now(),
                                              .durable = settings_.durable,
                                              .file_digest = false,
                                              .remove_file_when_read = request.package_is_scratch});
  if (!extracted) {
    return std::unexpected(
        extracted.error().WithContext(fmt::format("extracting into {}", staging.string())));
  }
  if (extracted->manifest_json != ctx.manifest_json) {
    return Fail(ErrorCode::kIntegrity, fmt::format("{} changed between verification and extraction",
                                                   request.package.string()));
  }
  return extracted;
}

Result<DeploymentOutcome> Deployer::Succeed(Context& ctx, bool announce) {
  const std::string note = fmt::format("{} {} is current", ctx.app, ctx.version->ToString());
  if (announce) {
    if (auto ok = Enter(ctx, Step::kSucceeded, note, ctx.last_output); !ok) {
      return std::unexpected(ok.error());
    }
  }
  if (auto pruned = layout_.Prune(ctx.app, settings_.retained_releases, ctx.previous); !pruned) {
    // The deployment stands; a release left over is only disk space.
    log::Warn("{}: pruning old releases: {}", ctx.app, pruned.error().message());
  } else {
    for (const auto& v : *pruned) log::Info("{}: removed old release {}", ctx.app, v.ToString());
  }
  if (auto ok = layout_.RemoveLeftovers(ctx.app); !ok) {
    log::Warn("{}: {}", ctx.app, ok.error().message());
  }
  return Finish(ctx, Step::kSucceeded, note);
}

Result<DeploymentOutcome> Deployer::HandleFailure(Context& ctx, const StepFailure& failure) {
  log::Warn("deployment {}: {} failed: {}", ctx.deployment, StepName(failure.step), failure.reason);
  const DeploymentEvent event =
      MakeEvent(ctx, Step::kFailed, failure.reason, failure.output, failure.step);
  if (auto ok = journal_.Record(Step::kFailed, event, failure.step); !ok) {
    return std::unexpected(ok.error());
  }
  CrashPoint(Step::kFailed);
  sink_.Publish(event);
  if (IsBeforeActivating(failure.step)) return CleanUpBeforeActivating(ctx);
  if (ctx.kind == DeploymentKind::kRollback) return RestoreKept(ctx, /*announce=*/true);
  return RollBackInstall(ctx, /*announce=*/true);
}

Result<DeploymentOutcome> Deployer::CleanUpBeforeActivating(Context& ctx) {
  // `current` was never switched: remove what this deployment added.
  if (auto ok = layout_.RemoveLeftovers(ctx.app); !ok) return std::unexpected(ok.error());
  auto current = layout_.CurrentVersion(ctx.app);
  if (!current) return std::unexpected(current.error());
  if (ctx.version && *current != ctx.version) {
    if (auto ok = layout_.RemoveRelease(ctx.app, *ctx.version); !ok) {
      return std::unexpected(ok.error());
    }
  }
  if (!*current) {
    if (auto ok = layout_.RemoveAppIfEmpty(ctx.app); !ok) return std::unexpected(ok.error());
  }
  std::string reason = "failed before activating; the current release was not touched";
  for (auto it = journal_.pending_events().rbegin(); it != journal_.pending_events().rend(); ++it) {
    if (it->deployment == ctx.deployment && it->step == Step::kFailed) {
      reason = it->message;
      break;
    }
  }
  return Finish(ctx, Step::kFailed, reason);
}

Result<DeploymentOutcome> Deployer::RollBackInstall(Context& ctx, bool announce) {
  const Version& failed = *ctx.version;
  if (announce) {
    const std::string note = ctx.previous
                                 ? fmt::format("restoring {} {}", ctx.app, ctx.previous->ToString())
                                 : fmt::format("removing {} {}: there is no previous release",
                                               ctx.app, failed.ToString());
    if (auto ok = Enter(ctx, Step::kRollingBack, note); !ok) return std::unexpected(ok.error());
  }
  if (!ctx.previous) {
    // A first install: rolling back means nothing is installed.
    Result<void> ok = layout_.RemoveCurrent(ctx.app);
    if (ok) ok = layout_.RemoveRelease(ctx.app, failed);
    if (ok) ok = layout_.RemoveLeftovers(ctx.app);
    if (ok) ok = layout_.RemoveAppIfEmpty(ctx.app);
    if (!ok) {
      if (auto e = Enter(ctx, Step::kRollbackFailed, ok.error().message()); !e) {
        return std::unexpected(e.error());
      }
      return Finish(ctx, Step::kRollbackFailed, ok.error().message());
    }
    const std::string note =
        fmt::format("{} {} removed; nothing is installed", ctx.app, failed.ToString());
    if (auto e = Enter(ctx, Step::kRolledBack, note); !e) return std::unexpected(e.error());
    return Finish(ctx, Step::kRolledBack, note);
  }

  auto phase = Restore(ctx, *ctx.previous, failed);
  if (!phase) return std::unexpected(phase.error());
  // The failed release goes (it was never good here) once `current` is off it.
  auto current = layout_.CurrentVersion(ctx.app);
  if (current && *current == ctx.previous) {
    if (auto ok = layout_.RemoveRelease(ctx.app, failed); !ok) {
      log::Warn("{}: {}", ctx.app, ok.error().message());
    }
  }
  if (auto ok = layout_.RemoveLeftovers(ctx.app); !ok) {
    log::Warn("{}: {}", ctx.app, ok.error().message());
  }
  if (*phase) {
    if (auto e = Enter(ctx, Step::kRollbackFailed, (*phase)->reason, (*phase)->output); !e) {
      return std::unexpected(e.error());
    }
    return Finish(ctx, Step::kRollbackFailed, (*phase)->reason);
  }
  // Say why, so the last message a person sees explains the rollback.
  std::string why;
  for (auto it = journal_.pending_events().rbegin(); it != journal_.pending_events().rend(); ++it) {
    if (it->deployment == ctx.deployment && it->step == Step::kFailed) {
      why = it->message;
      break;
    }
  }
  const std::string note =
      why.empty() ? fmt::format("{} {} restored", ctx.app, ctx.previous->ToString())
                  : fmt::format("{} {} restored after: {}", ctx.app, ctx.previous->ToString(), why);
  if (auto e = Enter(ctx, Step::kRolledBack, note, ctx.last_output); !e) {
    return std::unexpected(e.error());
  }
  return Finish(ctx, Step::kRolledBack, note);
}

Deployer::Phase Deployer::Restore(Context& ctx, const Version& to, const Version& leaving) {
  if (auto ok = layout_.SwitchCurrent(ctx.app, to); !ok) {
    return std::optional<StepFailure>(StepFailure{Step::kRollingBack, ok.error().message(), {}});
  }
  if (auto ok = Enter(ctx, Step::kRollback); !ok) return std::unexpected(ok.error());
  const auto hooks = HooksOf(ctx.app, to);
  const fs::path release = layout_.ReleaseDir(ctx.app, to);
  auto phase = RunHook(ctx, "rollback", Step::kRollingBack, hooks, release, to, leaving,
                       settings_.hook_timeout);
  if (!phase || *phase) return phase;
  return RunHook(ctx, "health_check", Step::kRollingBack, hooks, release, to, leaving,
                 settings_.health_check_timeout, settings_.health_check_attempts);
}

Result<DeploymentOutcome> Deployer::Finish(Context& ctx, Step outcome, std::string message) {
  auto current = layout_.CurrentVersion(ctx.app);
  FinishedDeployment summary{ctx.deployment, ctx.kind, ctx.app, outcome, std::nullopt};
  DeploymentOutcome result{ctx.deployment, ctx.app, outcome, std::nullopt, std::move(message)};
  if (current && *current) {
    summary.current_version = (*current)->ToString();
    result.current = **current;
  }
  if (auto ok = journal_.Finish(summary); !ok) return std::unexpected(ok.error());
  return result;
}

}  // namespace fabu::agent
