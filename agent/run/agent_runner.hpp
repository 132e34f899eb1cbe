// `fabu-agent run`: the networked agent's main loop (docs/agent.md).
//
// On start it finishes a deployment a crash interrupted (Deployer::Recover,
// its events reported like any other), sends the inventory and tells systemd
// READY=1. Then, until SIGTERM/SIGINT:
//   1. events still in the journal are posted (EventBatch); the coordinator's
//      EventAck lets the journal drop them. Nothing is dropped unacknowledged,
//      so events survive a coordinator outage and an agent restart;
//   2. a pending inventory is posted;
//   3. the client certificate, when the host has one, is renewed once less
//      than a third of its lifetime remains (client_identity.hpp; every
//      request to the coordinator presents it);
//      then the assignment is long-polled (GET ?wait=poll_wait_seconds);
//   4. an assignment is carried out: `assigned`, `downloading`, the package
//      downloaded with resume into DIR/downloads, `downloaded`, then the
//      Deployer (verify with the agent's own keys, install, health check,
//      roll back); a rollback assignment goes to the Deployer's rollback.
//      The inventory is sent again and the downloaded file removed. On the
//      first answer after start, and whenever the assignment changes, every
//      file in DIR/downloads but the current assignment's package (whose
//      .part a Range request resumes) is removed. An
//      assignment whose deployment already ended here is not run again: its
//      events are re-sent.
// A coordinator that cannot be reached (or answers 5xx) is retried with
// capped exponential backoff and jitter; the log says so once per change of
// state, not per try. With several coordinators (agent.json "servers"), one
// that is away (no answer, or a 503) is left for the next in the list,
// round robin, for the next attempt, still after the backoff's delay (which
// spreads a fleet that lost its coordinator at once); a Retry-After holds
// only for the coordinator that sent it (AgentApiClient). Each move is
// logged ("coordinator A unreachable (...); moving to B"). A refused credential (401) stops the
// agent: it has to be enrolled again.
//
// Sequence numbers: the engine numbers a deployment's events after the
// journal's NextSequence, which only sees events still held. So while a
// deployment is being downloaded (not yet in the journal's in_flight), its
// newest event is kept in the journal even when acknowledged, and numbering
// never restarts at 1 after an acknowledgement.
//
// Watchdog: when systemd sets WATCHDOG_USEC, WATCHDOG=1 is sent from the loop,
// from transfers in progress, and from a helper thread while a deployment
// runs (its hooks have their own timeouts).
//
// Not thread-safe: one runner per data directory (the journal's lock ensures it).
#pragma once

#include <filesystem>
#include <memory>

#include "protocol/error.hpp"

namespace fabu::agent {

class StopSignal;

class AgentRunner {
 public:
  // Reads DIR/agent.json, the credential, the CA and trusted keys, and opens
  // the journal. Errors name the file at fault.
  static Result<std::unique_ptr<AgentRunner>> Create(const std::filesystem::path& data_dir,
                                                     const StopSignal& stop);
  ~AgentRunner();

  // Runs until a stop is requested (returns success) or a fatal error.
  Result<void> Run();

 private:
  struct State;
  explicit AgentRunner(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace fabu::agent
