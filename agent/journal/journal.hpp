// The agent's durable journal: the deployment in flight and the events not yet
// acknowledged by their receiver.
//
// One JSON file, <data_dir>/journal.json, rewritten whole on every change by
// temp file + fsync + rename + fsync of the directory, so after a crash it
// holds exactly the last state written. The deployment engine records a step
// *before* doing it; recovery reads the step back and knows how far the
// deployment may have got. Format (format 1):
//
//   {
//     "format": 1,
//     "in_flight": {                      // absent when idle
//       "deployment": "d-42", "kind": "install" | "rollback",
//       "package": "/var/lib/fabu-agent/downloads/x.fabu", "package_sha256": "…",
//       "app": "c3m-video", "version": "V1.3.0.12",
//       "previous_version": "V1.3.0.11",  // absent on a first install
//       "step": "health_check",           // last step (or hook point) entered
//       "failed_step": "health_checking", // once `failed` was recorded
//       "next_sequence": 5
//     },
//     "events": [ {"deployment": "d-42", "sequence": 1, "step": "verified",
//                  "time": "…Z", "app": …, "version": …, "message": …,
//                  "output": …, "failed_step": …}, … ],
//     "last": {                           // the last finished deployment
//       "deployment": "d-41", "kind": "install", "app": "c3m-video",
//       "outcome": "succeeded", "current_version": "V1.3.0.11",
//       "last_sequence": 5
//     }
//   }
//
// A Journal object holds an exclusive flock on <data_dir>/agent.lock for its
// lifetime, so two agents never share a data directory. Not thread-safe.
// Every mutator but Acknowledge writes the file before returning; when the
// write fails the in-memory state is left as it was and the error says which
// file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "agent/deploy/deployment_event.hpp"
#include "protocol/error.hpp"

namespace fabu::agent {

struct InFlightDeployment {
  std::string deployment;
  DeploymentKind kind = DeploymentKind::kInstall;
  std::string package;  // path of the package file; empty for a rollback
  std::string package_sha256;
  std::string app;
  std::string version;                          // being installed or restored
  std::optional<std::string> previous_version;  // current before the deployment
  Step step = Step::kVerified;
  std::optional<Step> failed_step;
  std::uint64_t next_sequence = 1;

  friend bool operator==(const InFlightDeployment&, const InFlightDeployment&) = default;
};

struct FinishedDeployment {
  std::string deployment;
  DeploymentKind kind = DeploymentKind::kInstall;
  std::string app;
  Step outcome = Step::kSucceeded;             // succeeded | failed | rolled_back | rollback_failed
  std::optional<std::string> current_version;  // on disk once it finished
  std::uint64_t last_sequence = 0;             // set by Journal::Finish

  friend bool operator==(const FinishedDeployment&, const FinishedDeployment&) = default;
};

class Journal {
 public:
  static constexpr std::string_view kFileName = "journal.json";
  static constexpr std::string_view kLockName = "agent.lock";

  // Creates `data_dir` if needed, takes its lock and reads the journal (an
  // absent file is an empty journal). A journal that does not parse is an
  // error naming the file: the agent will not guess what was in flight.
  static Result<Journal> Open(const std::filesystem::path& data_dir);

  Journal(Journal&& other) noexcept;
  Journal& operator=(Journal&&) = delete;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;
  ~Journal();

  const std::filesystem::path& path() const { return path_; }
  const std::optional<InFlightDeployment>& in_flight() const { return state_.in_flight; }
  const std::vector<DeploymentEvent>& pending_events() const { return state_.events; }
  const std::optional<FinishedDeployment>& last() const { return state_.last; }

  // Starts a deployment (refused while another is in flight) and queues
  // `event`, which must carry the deployment's first sequence number.
  Result<void> Begin(const InFlightDeployment& deployment, const DeploymentEvent& event);

  // Records that the deployment in flight entered `step` (and, for `failed`,
  // which step failed), queuing `event` if given.
  Result<void> Record(Step step, const std::optional<DeploymentEvent>& event,
                      std::optional<Step> failed_step = std::nullopt);

  // Queues an event of a deployment that never started (refused at verify).
  Result<void> Append(const DeploymentEvent& event);

  // Ends the deployment in flight, keeping `summary` as `last`.
  Result<void> Finish(const FinishedDeployment& summary);

  // The sequence number the next event of `deployment` must carry: 1 for a
  // new deployment, one past the last one used otherwise (also after it
  // finished, so a repeated deployment never reuses a number).
  std::uint64_t NextSequence(std::string_view deployment) const;

  // Drops the queued events of `deployment` with sequence <= `through`. Not
  // written at once: the next write carries it (every step writes), or
  // WriteAcknowledged. Losing it to a crash only means those events are sent
  // again, and their receiver stores an event once however often it comes;
  // so a deployment's steps do not wait for a write per acknowledgement.
  Result<void> Acknowledge(std::string_view deployment, std::uint64_t through);

  // Writes acknowledgements not written yet, if any (when idle).
  Result<void> WriteAcknowledged();

  // The whole journal as JSON (what the file holds), for `fabu-agent status`.
  std::string Serialize() const;

 private:
  struct State {
    std::optional<InFlightDeployment> in_flight;
    std::vector<DeploymentEvent> events;
    std::optional<FinishedDeployment> last;
  };

  Journal(std::filesystem::path path, int lock_fd);
  Result<void> Load();
  // Writes `next` durably, then adopts it; on failure nothing changes.
  Result<void> Commit(State next);
  static std::string Serialize(const State& state);

  std::filesystem::path path_;
  int lock_fd_ = -1;
  State state_;
  bool unwritten_acks_ = false;  // state_ has acknowledgements the file lacks
};

}  // namespace fabu::agent
