// fabu-loadgen: N simulated agents against a real coordinator (fleet.hpp).
//
//   fabu-loadgen --server https://127.0.0.1:PORT --ca ca.pem --agents 20000
//       --enroll-token T --credentials creds.txt [--until done] [--skip-download] ...
//
// --server may be repeated (or list URLs separated by commas): coordinators
// of one installation, the agents spread over them and moving to the next on
// a failure (fleet.hpp, FleetOptions::servers).
//
// Prints the report (fleet.hpp) on stdout; exit 0 when it ran, 1 when it
// could not start (with the reason on stderr).
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <iostream>

#include "tests/load/fleet.hpp"

namespace {

// "https://HOST:PORT" -> host, port.
bool ParseServer(const std::string& url, fabu::load::FleetServer& server) {
  const std::string prefix = "https://";
  if (url.rfind(prefix, 0) != 0) return false;
  const std::string rest = url.substr(prefix.size());
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos) return false;
  server.host = rest.substr(0, colon);
  unsigned port = 0;
  const char* end = rest.data() + rest.size();
  while (end > rest.data() && *(end - 1) == '/') --end;
  auto [ptr, ec] = std::from_chars(rest.data() + colon + 1, end, port);
  if (ec != std::errc() || ptr != end || port == 0 || port > 65535) return false;
  server.port = static_cast<std::uint16_t>(port);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  fabu::load::FleetOptions options;
  std::vector<std::string> servers;
  std::string until = "deadline", labels;
  int run_seconds = 300;
  CLI::App app{"fabu-loadgen: simulated agents over real TLS against a fabu-coordinator"};
  app.add_option("--server", servers,
                 "https://127.0.0.1:PORT (an IP address); repeat it, or separate URLs by commas, "
                 "for several coordinators: agent i starts on the i-th (modulo), moves on "
                 "failure")
      ->required()
      ->delimiter(',');
  app.add_option("--ca", options.ca, "the coordinator's CA (DIR/ca.pem)")->required();
  app.add_option("--agents", options.agents, "simulated agents")->check(CLI::Range(1, 200000));
  app.add_option("--name-prefix", options.name_prefix, "host names are PREFIX00001, ...");
  app.add_option("--enroll-token", options.enroll_token, "for agents without a saved credential");
  app.add_option("--credentials", options.credentials,
                 "file of NAME CREDENTIAL lines: read, and appended with new enrollments");
  app.add_option("--labels", labels, "k=v,... added at enrollment");
  app.add_option("--poll-wait", options.poll_wait_seconds, "long-poll wait in seconds")
      ->check(CLI::Range(0, 60));
  app.add_option("--run-seconds", run_seconds, "hard bound of the run")->check(CLI::Range(1, 3600));
  app.add_option("--until", until,
                 "deadline (hold until --run-seconds or a signal), done "
                 "(every agent finished a deployment), enrolled")
      ->check(CLI::IsMember({"deadline", "done", "enrolled"}));
  app.add_flag("--skip-download", options.skip_download, "report the steps without downloading");
  app.add_option("--fail-fraction", options.fail_fraction, "agents that fail at installing")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--extra-events", options.extra_events,
                 "events each agent posts per ingestion round after its deployment")
      ->check(CLI::Range(0, 100000));
  app.add_option("--events-per-post", options.events_per_post,
                 "events per POST of each ingestion round (e.g. 1,10: two rounds; each "
                 "SIGUSR1 opens the next)")
      ->delimiter(',')
      ->check(CLI::Range(1, 1000));
  app.add_option("--connect-rate", options.connect_rate, "new agents started per second")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--connect-concurrency", options.connect_concurrency,
                 "connection attempts (TCP connect + TLS handshake) in flight at most")
      ->check(CLI::Range(1, 1000000));
  double backoff_initial = 0.5, backoff_cap = 30;
  app.add_option("--backoff-initial", backoff_initial,
                 "seconds before the first retry of a failed connection (doubling, jittered)")
      ->check(CLI::Range(0.001, 3600.0));
  app.add_option("--backoff-cap", backoff_cap, "the backoff's cap in seconds")
      ->check(CLI::Range(0.001, 3600.0));
  bool no_resume = false;
  app.add_flag("--no-resume", no_resume, "full TLS handshakes on reconnects (no session reuse)");
  app.add_option("--threads", options.threads, "I/O threads")->check(CLI::Range(1, 8));
  app.add_option("--seed", options.seed, "seed of --fail-fraction's choice");
  app.add_option("--assignments-out", options.assignments_out,
                 "NAME DEPLOYMENT ASSIGNED_MS FINAL_MS RESULT per agent (wall clock, ms)");
  app.add_option("--status-file", options.status_file, "progress, rewritten every second");
  app.add_option("--report-json", options.report_json, "the report as JSON");
  CLI11_PARSE(app, argc, argv);

  for (const std::string& url : servers) {
    fabu::load::FleetServer server;
    if (!ParseServer(url, server)) {
      std::cerr << "fabu-loadgen: --server " << url << ": expected https://IP:PORT\n";
      return 1;
    }
    options.servers.push_back(server);
  }
  options.run_for = std::chrono::seconds(run_seconds);
  options.backoff_initial = std::chrono::milliseconds(static_cast<long>(backoff_initial * 1000));
  options.backoff_cap = std::chrono::milliseconds(static_cast<long>(backoff_cap * 1000));
  options.resume_sessions = !no_resume;
  options.until = until == "done"       ? fabu::load::Until::kDone
                  : until == "enrolled" ? fabu::load::Until::kEnrolled
                                        : fabu::load::Until::kDeadline;
  std::size_t start = 0;
  while (start < labels.size()) {
    const auto comma = labels.find(',', start);
    const std::string pair =
        labels.substr(start, comma == std::string::npos ? comma : comma - start);
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "fabu-loadgen: --labels: \"" << pair << "\" is not k=v\n";
      return 1;
    }
    options.labels[pair.substr(0, eq)] = pair.substr(eq + 1);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  auto report = fabu::load::RunFleet(options);
  if (!report) {
    std::cerr << "fabu-loadgen: " << report.error().message() << "\n";
    return 1;
  }
  std::cout << report->Text() << std::flush;
  return 0;
}
