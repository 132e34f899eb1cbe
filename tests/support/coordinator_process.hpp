// Runs a real `fabu-coordinator` for integration tests.
//
// InitCoordinator runs `fabu-coordinator init`; CoordinatorProcess starts
// `fabu-coordinator serve --data DIR --listen 127.0.0.1:0`, reads its stdout
// until the "listening on https://127.0.0.1:PORT" line (waiting with a
// deadline, never sleeping) and knows the port from then on. Stop() sends
// SIGTERM and waits for the exit with a deadline; the destructor kills a
// daemon still running. The daemon's stderr (its log) goes to DIR/serve.log.
//
// The binary's path comes from the FABU_COORDINATOR_PATH compile definition
// of the test target that compiles coordinator_process.cpp.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/run_command.hpp"

namespace fabu::testing {

std::string CoordinatorBinary();

// `fabu-coordinator init --data DIR ARGS...`; the admin token is the last
// line of `out`. With FABU_TEST_STORE set, the store goes to a new
// PostgreSQL database (test_store.hpp) unless ARGS name one.
CommandResult InitCoordinator(const std::filesystem::path& data,
                              const std::vector<std::string>& args = {});

// A new publisher key pair (`fabu keygen --out DIR/publisher`) whose public
// key the coordinator with data dir `data` trusts (`fabu-coordinator trust
// add`); the first command that failed, else the trust command's result.
CommandResult TrustNewPublisher(const std::filesystem::path& dir,
                                const std::filesystem::path& data);

// The last non-empty line of `text`.
std::string LastLine(const std::string& text);

class CoordinatorProcess {
 public:
  // Starts the daemon (`serve_args` added to its command line); check
  // started() (and log() when it did not).
  explicit CoordinatorProcess(std::filesystem::path data,
                              std::chrono::seconds startup_deadline = std::chrono::seconds(30),
                              const std::vector<std::string>& serve_args = {});
  ~CoordinatorProcess();
  CoordinatorProcess(const CoordinatorProcess&) = delete;
  CoordinatorProcess& operator=(const CoordinatorProcess&) = delete;

  bool started() const { return port_ != 0; }
  int port() const { return port_; }
  std::string url() const;  // https://127.0.0.1:PORT
  const std::filesystem::path& data() const { return data_; }
  std::filesystem::path ca() const { return data_ / "ca.pem"; }
  std::string log() const;  // the daemon's stderr so far (plus startup output)

  // SIGTERM, then waits up to `deadline`; returns the exit status, or -1 when
  // it died by a signal or had to be killed.
  int Stop(std::chrono::seconds deadline = std::chrono::seconds(30));

  // Environment for the `fabu` CLI to talk to this daemon with `token`.
  std::vector<std::string> ClientEnv(const std::string& token) const;

 private:
  std::filesystem::path data_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
  std::string startup_output_;
};

// Runs the `fabu` CLI against `coordinator` as the holder of `token`.
CommandResult FabuAs(const CoordinatorProcess& coordinator, const std::string& token,
                     const std::vector<std::string>& args);

}  // namespace fabu::testing
