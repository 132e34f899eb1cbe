// A simulated fleet of agents in one process, for load tests.
//
// Each simulated agent holds one real TLS connection to the coordinator
// (a Boost.Beast client coroutine over the coordinator's own TlsStream, on
// the client side; the coordinator's CA pinned) and speaks the
// agent protocol with the message types of protocol/agent_api.hpp: it
// enrolls with an enrollment token (or reuses a credential saved by an
// earlier run), sends its inventory, long-polls its assignment and, on an
// assignment, reports the deployment's steps as events, one POST per step as
// fabu-agent does while it reaches the coordinator (downloading the package
// for real unless skip_download; failing at `installing` for a fail_fraction
// of the agents). Optionally it then posts more events for that deployment,
// to measure event ingestion apart from the rollout, in rounds: each SIGUSR1
// opens the next round, in which every agent posts extra_events events,
// events_per_post[round] to a POST. (fabu-agent sends every unacknowledged
// event of its journal, up to 100, in one POST: after a reconnect a host has
// several ready; while connected it posts each step as it happens.)
//
// Agents run as coroutines on `threads` I/O threads (one io_context each),
// not a thread per agent. Like a real fleet coming up, at most
// connect_concurrency connection attempts (TCP connect + TLS handshake) are
// in flight at once, and an agent whose connection or handshake failed backs
// off exponentially with jitter as fabu-agent does (backoff_initial doubling
// to backoff_cap, a delay drawn in [nominal/2, nominal]) until it connects
// and gets an answer. A reconnect offers the TLS session of the agent's
// previous connection (TLS 1.3 ticket) for resumption. A request that fails
// on an established connection is retried after a short, jittered pause; a
// 503 waits its Retry-After.
//
// What it measures: connections held, requests and latency per request type,
// the wall-clock time each agent received its assignment and stored its final
// event, moves from one coordinator to the next, and errors by kind. Run() returns when every agent
// has finished a deployment (Until::kDone), or at the deadline, or on SIGINT/SIGTERM.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::load {

enum class Until {
  kDeadline,  // hold the fleet until the deadline or a signal
  kDone,      // stop once every agent has finished one deployment
  kEnrolled,  // stop once every agent is enrolled (credentials saved)
};

// One coordinator: an IP address and a port.
struct FleetServer {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
};

struct FleetOptions {
  // The coordinators of one installation (one is enough). Agent i starts
  // with servers[i % n]; an agent whose connection or TLS handshake fails,
  // whose connection breaks, or that gets a 503 moves to the next one
  // (round robin) for its next attempt, after its backoff (without the
  // Retry-After, which was the other server's), as fabu-agent does.
  std::vector<FleetServer> servers;
  std::filesystem::path ca;
  int agents = 100;
  std::string name_prefix = "load-";
  std::string enroll_token;           // for agents without a saved credential
  std::filesystem::path credentials;  // "NAME CREDENTIAL" lines, read and appended
  std::map<std::string, std::string> labels;
  int poll_wait_seconds = 30;
  std::chrono::seconds run_for{300};  // hard bound of the whole run
  Until until = Until::kDeadline;
  bool skip_download = false;
  double fail_fraction = 0.0;
  int extra_events = 0;                 // more events per agent and round, after its deployment
  std::vector<int> events_per_post{1};  // one ingestion round each: events per POST
  int connect_rate = 2000;              // new agents started per second while ramping up
  int connect_concurrency = 200;        // connection attempts (connect + TLS) in flight, at most
  std::chrono::milliseconds backoff_initial{500};  // after a failed connect/handshake
  std::chrono::milliseconds backoff_cap{30000};
  bool resume_sessions = true;  // offer the previous TLS session on a reconnect
  int threads = 1;
  std::uint64_t seed = 1;
  std::filesystem::path assignments_out;  // "NAME DEPLOYMENT ASSIGNED_MS FINAL_MS RESULT"
  std::filesystem::path status_file;      // rewritten every second
  std::filesystem::path report_json;      // the report, as JSON
};

struct LatencySummary {
  std::uint64_t count = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

struct FleetReport {
  double seconds = 0;
  int agents = 0;
  int enrolled = 0;
  int held_at_end = 0;
  int max_held = 0;
  double all_held_seconds = -1;     // first moment every agent held a connection (-1: never)
  double all_polling_seconds = -1;  // first moment every agent was in its long poll
  std::uint64_t connect_attempts = 0;
  std::uint64_t connect_failed = 0;    // TCP connect failed or timed out
  std::uint64_t handshake_failed = 0;  // TLS handshake failed or timed out
  std::uint64_t handshakes_full = 0;
  std::uint64_t handshakes_resumed = 0;  // a previous session was accepted
  std::uint64_t server_moves = 0;        // agents that moved to the next server
  int assigned = 0;
  int succeeded = 0;
  int failed = 0;
  int preflight_answered = 0;  // pre-flight questions answered (accepted by the coordinator)
  std::uint64_t requests = 0;
  double requests_per_second = 0;
  struct IngestRound {
    int events_per_post = 0;
    std::uint64_t events = 0;  // acknowledged
    std::uint64_t posts = 0;   // acknowledged POSTs
    double seconds = 0;        // from SIGUSR1 (the round's gate) to the last ack
  };
  std::vector<IngestRound> ingest_rounds;         // those opened
  std::map<std::string, LatencySummary> latency;  // per request type
  std::map<std::string, std::uint64_t> errors;    // per kind

  std::string Text() const;
  std::string Json() const;
};

// Runs the fleet; an Error when it cannot start (limits, files, TLS setup).
Result<FleetReport> RunFleet(const FleetOptions& options);

}  // namespace fabu::load
