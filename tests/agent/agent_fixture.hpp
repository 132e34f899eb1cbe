// Shared pieces of the agent tests: signed packages made on the fly, hooks
// that record what they saw, a fake clock, an event recorder, and snapshots of
// an apps root.
//
// Hooks made by `RecordingHook` append "<hook> <FABU_VERSION>" to
// <root>/hooklog/order, write their FABU_* environment to
// <root>/hooklog/<hook>-<version>.env, and exit 1 when a file
// <apps_root>/FAIL_<hook>_<version> exists, so a test steers failures by
// touching files.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/clock.hpp"
#include "agent/deploy/deployment_event.hpp"
#include "packaging/keys.hpp"
#include "packaging/manifest.hpp"

namespace fabu::agent::testing {

class FakeClock final : public Clock {
 public:
  protocol::UnixSeconds Now() override { return now; }
  void SleepFor(std::chrono::milliseconds duration) override { slept += duration; }

  protocol::UnixSeconds now = 1'800'000'000;  // 2027-01-15
  std::chrono::milliseconds slept{0};
};

class RecordingSink final : public EventSink {
 public:
  void Publish(const DeploymentEvent& event) override { events.push_back(event); }
  std::vector<std::string> Steps() const;
  std::vector<DeploymentEvent> events;
};

// A hook script recording its call and environment (see the file comment).
std::string RecordingHook(const std::string& name);

struct PackageSpec {
  std::string name = "c3m-video";
  std::string version = "V1.0.0.0";
  std::map<std::string, std::string> files;  // path -> content
  std::map<std::string, std::string> hooks;  // hook name -> script
  std::optional<std::string> expires;
  std::map<std::string, std::string> targets;
};

struct BuiltPackage {
  std::filesystem::path path;
  std::string sha256;
  packaging::Manifest manifest;
};

// Builds and signs a package under `work_dir` with the packaging library.
BuiltPackage MakePackage(const std::filesystem::path& work_dir, const PackageSpec& spec,
                         const packaging::SigningKey& key);

// A health_check hook that counts its runs per version (in
// <apps_root>/../hooklog/checks-<version>) and exits 1 from run `fail_from`
// on (0: never), saying "unhealthy on check N".
std::string CountingHealthCheck(int fail_from);

// Every hook of kHookNames as a RecordingHook.
std::map<std::string, std::string> AllRecordingHooks();

// "path -> type/target/content digest" for everything under `root`, to show
// that a refused deployment changed nothing.
std::map<std::string, std::string> Snapshot(const std::filesystem::path& root);

// Checks that `release_dir` holds exactly the entries of `manifest`, each with
// its type, mode and digest; returns the differences (empty when it matches).
std::vector<std::string> CompareWithManifest(const std::filesystem::path& release_dir,
                                             const packaging::Manifest& manifest);

// Names under `dir` starting with `prefix` (".staging-", ...).
std::vector<std::string> EntriesStartingWith(const std::filesystem::path& dir,
                                             const std::string& prefix);

// Path of the `fabu-agent` binary under test.
std::string AgentBinary();

}  // namespace fabu::agent::testing
