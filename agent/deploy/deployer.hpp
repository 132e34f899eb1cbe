// The deployment engine: installs one package on this host, or restores the
// previous release kept locally, reporting every step and rolling back on
// failure (docs/agent.md). No networking: the package is a file
// already downloaded.
//
// An install goes: verified (signature by the agent's own trusted keys, the
// package's SHA-256 equals the id assigned, expiry, `targets` against the
// host, anti-downgrade) -> installing (extract into <app>/.staging-<v>,
// pre_install from there, place as releases/<v>, post_install) -> activating
// (switch `current`, activate) -> health_checking (health_check, retried) ->
// observing (only when the request asks for an observation period: the
// health check re-run every interval, each run a single attempt; the first
// failure fails the deployment and it rolls back) -> succeeded; then releases
// beyond the retained count are pruned.
//   - A failure before activating reports `failed` and leaves `current`
//     untouched; staging and the new release directory are removed.
//   - A failure from activating on reports `failed`, `rolling_back`, then
//     switches `current` back, runs the previous release's rollback hook and
//     health check, removes the failed release and reports `rolled_back` (or
//     `rollback_failed` with the reason). With no previous release, `current`
//     and the release are removed: `rolled_back` means nothing is installed.
//   - The version already current succeeds at once (idempotent) when it is
//     the same package (the id recorded at install); the same name and
//     version with another id is refused, naming both. A lower version is
//     refused at verify unless it comes as a rollback of a kept release.
// A rollback deployment switches `current` to the newest kept release older
// than the current one (or the kept version of the package given, which
// must be the package installed), runs its rollback hook and health check:
// `rolled_back` or `rollback_failed`. It restores only a release this agent
// installed itself (its signed manifest kept under manifests/), and hooks
// always come from that kept manifest. An app that is not a package name is
// refused before it touches the file system (names.hpp).
//
// Every step is written to the journal before it is carried out. `Recover`,
// called on start, finishes a deployment a crash interrupted: before
// activating it cleans up and reports `failed` ("agent restarted during
// <step>"); from activating on it rolls back; so the host ends on the old
// release or the new one, and the journal's last event says which.
//
// Hooks run with FABU_APP, FABU_VERSION, FABU_RELEASE_DIR,
// FABU_PREVIOUS_VERSION and FABU_PREVIOUS_DIR (empty on a first install),
// FABU_APPS_ROOT and FABU_HOOK (the hook's name). pre_install runs from the
// staging tree before it is placed (the hook lives in the payload, so it
// cannot run before extraction): it also gets FABU_STAGING_DIR, where the tree
// is now, while FABU_RELEASE_DIR names where it will be. A rollback hook runs
// in the release being restored; its FABU_PREVIOUS_* name the release left.
//
// A Deployer runs one deployment at a time on the calling thread. Errors
// (Result) are the agent's own failures that stop it, such as an unwritable
// journal or a deployment already in flight; a deployment that fails is a
// DeploymentOutcome, reported through the EventSink.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "agent/common/clock.hpp"
#include "agent/deploy/deployment_event.hpp"
#include "agent/hooks/hook_runner.hpp"
#include "agent/host/host_facts.hpp"
#include "agent/install/install_layout.hpp"
#include "agent/journal/journal.hpp"
#include "packaging/growing_file.hpp"
#include "packaging/keys.hpp"
#include "packaging/manifest.hpp"
#include "packaging/package.hpp"
#include "protocol/error.hpp"
#include "protocol/version.hpp"

namespace fabu::agent {

struct DeploymentSettings {
  std::filesystem::path apps_root;
  std::size_t retained_releases = 3;  // never fewer than current + previous
  std::chrono::milliseconds hook_timeout{300'000};
  std::chrono::milliseconds health_check_timeout{60'000};
  int health_check_attempts = 3;
  std::chrono::milliseconds health_check_delay{5'000};
  bool durable = true;  // sync extracted trees (off only in benchmarks)
};

class PreparedInstall;

struct DeploymentRequest {
  std::string deployment;  // the coordinator's id
  DeploymentKind kind = DeploymentKind::kInstall;
  // install: the downloaded package. rollback: optional, a package of the
  // kept version to restore.
  std::filesystem::path package;
  std::string package_sha256;  // the package id assigned; required with `package`
  std::string app;             // rollback without a package: the app to roll back
  // install: after the health check passed, keep re-running it every
  // `observe_interval` until `observe` has passed (0: no observation). An
  // interval of 0, or longer than `observe`, checks once at the end.
  std::chrono::seconds observe{0};
  std::chrono::seconds observe_interval{0};
  // The SHA-256 of `package` when already known (the agent hashed the bytes
  // as they were downloaded): verify then reads only the signed header
  // instead of the whole file. The extraction must then find the same signed
  // manifest (and the payload its digest names), so a file changed meanwhile
  // is still refused.
  std::string package_file_sha256;
  // `package` is the agent's own download, not needed once extracted: it is
  // removed then, before the extracted tree is synced, so its bytes are never
  // written back to disk for nothing. (Recovery never reads it again.)
  bool package_is_scratch = false;
  // install: the extraction Deployer::PrepareInstall started while `package`
  // was being downloaded. Deploy uses its tree when the extraction went
  // through and saw the same signed manifest that `verified` checked;
  // otherwise (it failed, or was refused) it extracts `package` as it would
  // without one. Not owned.
  PreparedInstall* prepared = nullptr;
};

struct DeploymentOutcome {
  std::string deployment;
  std::string app;
  Step final_step = Step::kFailed;           // succeeded | failed | rolled_back | rollback_failed
  std::optional<protocol::Version> current;  // the active release when it ended
  std::string message;

  // The deployment did what it was asked: an install succeeded, a rollback
  // deployment rolled back.
  bool ok(DeploymentKind kind) const {
    return final_step == (kind == DeploymentKind::kInstall ? Step::kSucceeded : Step::kRolledBack);
  }
};

// An install's tree being extracted, on a thread of its own, while the
// package is still being downloaded: the download and the extraction
// overlap, as a streaming installer's do, yet nothing is activated before
// every check of the ordinary path has passed (see Deployer::PrepareInstall).
// Destroying it tells a download still running that nobody follows it any
// more, waits for the thread, and removes a tree Deploy did not take.
// A release's tree extracted ahead of its deployment's `installing` step,
// into the release's staging directory; every entry checked against the
// signed manifest.
struct StagedTree {
  packaging::VerifiedPackage verified;  // as ExtractPackage returned it
  std::filesystem::path staging;        // the tree, complete and checked
};

class PreparedInstall {
 public:
  PreparedInstall(const PreparedInstall&) = delete;
  PreparedInstall& operator=(const PreparedInstall&) = delete;
  ~PreparedInstall();

 private:
  friend class Deployer;
  PreparedInstall(InstallLayout layout, std::shared_ptr<packaging::GrowingFile> growing);
  // Waits for the extraction; the tree is the caller's from then on.
  Result<StagedTree> Take();

  InstallLayout layout_;
  std::shared_ptr<packaging::GrowingFile> growing_;
  std::string app_;                           // written by thread_: the app it prepares
  std::optional<Result<StagedTree>> result_;  // written by thread_ before it ends
  bool taken_ = false;
  std::thread thread_;
};

class Deployer {
 public:
  // The references must outlive the Deployer.
  Deployer(DeploymentSettings settings, packaging::TrustStore trust, HostFacts host,
           Journal& journal, EventSink& sink, HookRunner& hooks, Clock& clock);

  // Runs a deployment to its end. Refused while the journal holds one in
  // flight (call Recover first).
  Result<DeploymentOutcome> Deploy(const DeploymentRequest& request);

  // Finishes the deployment the journal holds in flight, if any.
  Result<std::optional<DeploymentOutcome>> Recover();

  // Starts extracting `package`, which the caller is still downloading and
  // reports through `growing`, so that the install overlaps the transfer.
  // The thread reads the signed header as soon as it has arrived and goes on
  // only if an install of it would: signature by a trusted key, expiry,
  // targets, a version above the installed one. It then extracts into the
  // release's staging directory with every entry checked against the signed
  // manifest, and finishes when the download is complete. Nothing outside
  // the app's scratch space is touched, and nothing is reported or
  // journaled: the deployment's steps stay those of Deploy, which the caller
  // calls once the download is done, with `prepared` set. Only the files'
  // sync is left to Deploy, after the package file is removed. The Deployer
  // must not deploy anything else while the returned object lives.
  std::unique_ptr<PreparedInstall> PrepareInstall(const std::filesystem::path& package,
                                                  std::shared_ptr<packaging::GrowingFile> growing);

  const InstallLayout& layout() const { return layout_; }

 private:
  struct Context;
  struct StepFailure {
    Step step;  // reported step that failed
    std::string reason;
    std::string output;
  };
  // nullopt: the phase went through; a StepFailure: the deployment failed; an
  // error: the agent itself cannot go on (journal).
  using Phase = Result<std::optional<StepFailure>>;

  Result<DeploymentOutcome> Install(const DeploymentRequest& request);
  Result<DeploymentOutcome> RollBack(const DeploymentRequest& request);
  // `read`: the package as an extraction already read it (its id included),
  // so the file is not read again.
  Result<packaging::VerifiedPackage> VerifyForHost(
      const DeploymentRequest& request, const packaging::VerifiedPackage* read = nullptr);
  Result<DeploymentOutcome> Refuse(Context& ctx, const Error& error);

  DeploymentEvent MakeEvent(Context& ctx, Step step, std::string message = {},
                            std::string output = {}, std::optional<Step> failed = {});
  Result<void> Enter(Context& ctx, Step step, std::string message = {}, std::string output = {});
  // Journals hook point `point` when the release declares hook `name`.
  Result<void> EnterHookPoint(Context& ctx, Step point,
                              const std::map<std::string, std::string>& hooks,
                              const std::string& name);

  Phase InstallAndActivate(Context& ctx, const DeploymentRequest& request);
  // The extraction of an install: the prepared tree when it can be used,
  // else a fresh extraction of the package into `staging`.
  Result<packaging::VerifiedPackage> Extract(Context& ctx, const DeploymentRequest& request,
                                             const std::filesystem::path& staging);
  // Extracts into the release's staging directory if an install of the
  // package would go on (PrepareInstall). `fd` (or -1) and `growing` (or
  // null) as in packaging::VerifyOptions. `app` is set once the header
  // passed and the app's directory is touched.
  Result<StagedTree> ExtractAhead(const std::filesystem::path& package, int fd,
                                  packaging::GrowingFile* growing, std::string& app);
  // A local package file: its tree extracted while another thread hashes
  // the whole file for its id; one read of the file each, side by side.
  std::optional<StagedTree> ExtractLocalFile(const std::filesystem::path& package);
  // Removes a staged tree no deployment will use.
  void DiscardStaged(const std::string& app);
  Phase Observe(Context& ctx, const DeploymentRequest& request);
  Result<DeploymentOutcome> Succeed(Context& ctx, bool announce = true);
  Result<DeploymentOutcome> HandleFailure(Context& ctx, const StepFailure& failure);
  Result<DeploymentOutcome> CleanUpBeforeActivating(Context& ctx);
  Result<DeploymentOutcome> RollBackInstall(Context& ctx, bool announce);
  Result<DeploymentOutcome> RestoreKept(Context& ctx, bool announce);
  // Switches `current` to `to`, runs its rollback hook and health check;
  // `leaving` is the release switched away from (FABU_PREVIOUS_*).
  Phase Restore(Context& ctx, const protocol::Version& to, const protocol::Version& leaving);
  Result<DeploymentOutcome> Finish(Context& ctx, Step outcome, std::string message);

  // Runs hook `name` of a release if its manifest declares one.
  Phase RunHook(Context& ctx, const std::string& name, Step reported,
                const std::map<std::string, std::string>& hooks, const std::filesystem::path& root,
                const protocol::Version& version, const std::optional<protocol::Version>& previous,
                std::chrono::milliseconds timeout, int attempts = 1);
  // The hooks of a release, from the signed manifest kept when it was
  // installed (none without one).
  std::map<std::string, std::string> HooksOf(const std::string& app,
                                             const protocol::Version& version) const;
  // The signed manifest kept for a release this agent installed; an error
  // when none was kept or it is not that release's.
  Result<packaging::Manifest> KeptManifest(const std::string& app,
                                           const protocol::Version& version) const;
  // Succeeds when the kept release `app` `version` is the package
  // `package_id` (its recorded id; without one, its kept signed manifest
  // equals `manifest_json`); otherwise a conflict naming both.
  Result<void> CheckSameContent(const std::string& app, const protocol::Version& version,
                                const std::string& package_id,
                                const std::string& manifest_json) const;

  DeploymentSettings settings_;
  packaging::TrustStore trust_;
  HostFacts host_;
  InstallLayout layout_;
  Journal& journal_;
  EventSink& sink_;
  HookRunner& hooks_;
  Clock& clock_;
};

}  // namespace fabu::agent
