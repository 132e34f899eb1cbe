#include "tests/e2e/fleet.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>

#include "tests/support/agent_events.hpp"
#include "tests/support/agent_http.hpp"
#include "tests/support/coordinator_process.hpp"
#include "tests/support/test_store.hpp"
#include "tests/support/wait.hpp"

extern char** environ;

namespace fabu::e2e {
namespace {

using Clock = std::chrono::steady_clock;
using fabu::testing::LastLine;
using fabu::testing::ReadFile;
using fabu::testing::RunCommand;
using fabu::testing::WriteFile;

}  // namespace

std::string UtcIn(std::chrono::seconds offset) {
  const std::time_t t =
      std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + offset);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

namespace {

std::string ReadIfExists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec) ? ReadFile(path) : std::string();
}

std::map<std::string, std::string> HookScripts() {
  return {
      {"health_check",
       "#!/bin/sh\n"
       "if [ -e \"$FABU_APPS_ROOT/FAIL_HEALTH\" ] &&\n"
       "   grep -qx \"$FABU_VERSION\" \"$FABU_APPS_ROOT/FAIL_HEALTH\"; then\n"
       "  echo \"connecting to db-1:5432 ...\"\n"
       "  echo \"database unreachable: db-1:5432 refused the connection\" >&2\n"
       "  echo \"health check of $FABU_VERSION failed: FAIL_HEALTH\" >&2\n"
       "  exit 1\n"
       "fi\n"
       "echo \"$FABU_VERSION healthy\"\n"},
      {"activate",
       "#!/bin/sh\n"
       "echo \"$FABU_VERSION\" >> \"$FABU_APPS_ROOT/../activated\"\n"
       "if [ -e \"$FABU_APPS_ROOT/HOLD\" ]; then\n"
       "  touch \"$FABU_APPS_ROOT/HELD\"\n"
       "  i=0\n"
       "  while [ ! -e \"$FABU_APPS_ROOT/GO\" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"
       "fi\n"},
      {"rollback",
       "#!/bin/sh\n"
       "echo \"$FABU_VERSION $FABU_PREVIOUS_VERSION\" >> \"$FABU_APPS_ROOT/../rolled_back\"\n"},
  };
}

int MillisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

std::string Lower(std::string text) {
  std::ranges::transform(text, text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string AgentBinary() { return FABU_AGENT_PATH; }

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
  return fabu::testing::WaitUntil(condition, deadline);
}

// --- Process ---

Process::Process(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<std::string> storage = argv;
  std::vector<char*> args;
  for (auto& a : storage) args.push_back(a.data());
  args.push_back(nullptr);
  const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) pid_ = -1;
}

Process::~Process() { Kill(); }

int Process::Reap(bool block) {
  if (pid_ <= 0) return -1;
  int status = 0;
  pid_t done = 0;
  do {
    done = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (done < 0 && errno == EINTR);
  if (done == pid_) {
    pid_ = -1;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return 1;
  }
  return 0;
}

bool Process::Running() { return pid_ > 0 && Reap(false) == 0; }

int Process::Terminate(std::chrono::seconds deadline) {
  if (!Running()) return status_;
  kill(pid_, SIGTERM);
  const auto until = Clock::now() + deadline;
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd >= 0) {
    pollfd fd{pidfd, POLLIN, 0};
    int ready = 0;
    do {
      ready = poll(&fd, 1, MillisLeft(until));
    } while (ready < 0 && errno == EINTR);
    close(pidfd);
    if (ready > 0) {
      Reap(true);
      return status_;
    }
  }
  if (Running()) {
    Kill();
    return -1;
  }
  return status_;
}

void Process::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  Reap(true);
  status_ = -1;
}

// --- ThrottledRelay ---

ThrottledRelay::ThrottledRelay(int target_port)
    : target_port_(target_port), budget_(std::numeric_limits<std::uint64_t>::max()) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 16) != 0 || pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error("relay: cannot listen");
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Run(); });
}

ThrottledRelay::~ThrottledRelay() {
  stop_ = true;
  const char c = 's';
  [[maybe_unused]] auto n = write(wake_[1], &c, 1);
  thread_.join();
  close(listen_fd_);
  close(wake_[0]);
  close(wake_[1]);
}

void ThrottledRelay::SetBudget(std::uint64_t bytes) {
  budget_ = bytes;
  const char c = 'b';
  [[maybe_unused]] auto n = write(wake_[1], &c, 1);
}

void ThrottledRelay::Run() {
  struct Pair {
    int client;
    int server;
  };
  std::vector<Pair> pairs;
  char buffer[65536];
  auto close_pair = [](Pair& p) {
    close(p.client);
    close(p.server);
    p.client = p.server = -1;
  };
  // Writes everything (blocking): the relay is for one test at a time.
  auto send_all = [](int fd, const char* data, std::size_t size) {
    while (size > 0) {
      const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  };
  while (!stop_) {
    std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    const bool may_send = budget_ > 0;
    for (const auto& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.server, static_cast<short>(may_send ? POLLIN : 0), 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) {
      char drain[64];
      while (read(wake_[0], drain, sizeof drain) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) {
      const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        const int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<std::uint16_t>(target_port_));
        if (server >= 0 && connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
          pairs.push_back({client, server});
        } else {
          close(client);
          if (server >= 0) close(server);
        }
      }
    }
    // Only the pairs that were polled: one accepted just now has no entry in fds yet.
    const std::size_t polled = (fds.size() - 2) / 2;
    for (std::size_t i = 0; i < polled; ++i) {
      Pair& p = pairs[i];
      const pollfd& from_client = fds[2 + 2 * i];
      const pollfd& from_server = fds[3 + 2 * i];
      if (from_client.revents != 0) {
        const ssize_t n = read(p.client, buffer, sizeof buffer);
        if (n <= 0 || !send_all(p.server, buffer, static_cast<std::size_t>(n))) {
          close_pair(p);
          continue;
        }
      }
      if (from_server.revents != 0) {
        const std::uint64_t budget = budget_;
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(sizeof buffer, budget));
        if (want == 0) continue;
        const ssize_t n = read(p.server, buffer, want);
        if (n <= 0 || !send_all(p.client, buffer, static_cast<std::size_t>(n))) {
          close_pair(p);
          continue;
        }
        served_ += static_cast<std::uint64_t>(n);
        if (budget != std::numeric_limits<std::uint64_t>::max()) {
          budget_ = budget - static_cast<std::uint64_t>(n);
        }
      }
    }
    std::erase_if(pairs, [](const Pair& p) { return p.client < 0; });
  }
  for (auto& p : pairs) close_pair(p);
}

// --- Fleet ---

void Fleet::SetUp() {
  auto init = fabu::testing::InitCoordinator(CoordinatorDir());
  ASSERT_EQ(init.exit_code, 0) << init.err;
  admin_ = LastLine(init.out);
  auto trust = fabu::testing::TrustNewPublisher(dir_.path(), CoordinatorDir());
  ASSERT_EQ(trust.exit_code, 0) << trust.out << trust.err;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  auto add_user = [&](const std::string& name, const std::string& role) {
    auto r = As(admin_, {"user", "add", name, "--role", role});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return LastLine(r.out);
  };
  rm_ = add_user("zhang.rm", "release_manager");
  wang_ = add_user("wang.approver", "approver");
  li_ = add_user("li.approver", "approver");
  tester_ = add_user("chen.tester", "tester");
  viewer_ = add_user("zhao.viewer", "viewer");
}

void Fleet::TearDown() {
  // Agents and the coordinator end cleanly on SIGTERM.
  for (auto& agent : agents_) {
    if (agent.process && agent.process->Running()) {
      EXPECT_EQ(agent.process->Terminate(), 0) << agent.name << " on SIGTERM";
    }
  }
  if (coordinator_ && coordinator_->Running()) {
    EXPECT_EQ(StopCoordinator(), 0) << "fabu-coordinator on SIGTERM";
  }
  if (HasFailure()) {
    std::cerr << "--- coordinator log (tail) ---\n"
              << CoordinatorLog().substr(
                     CoordinatorLog().size() > 6000 ? CoordinatorLog().size() - 6000 : 0)
              << "\n--- agent logs ---\n"
              << AllAgentLogs() << "\n";
  }
}

std::unique_ptr<Process> Fleet::Serve(const fs::path& data, int port, int& listening_port) {
  const fs::path out = data / ("serve-" + std::to_string(++coordinator_starts_) + ".out");
  auto process = std::make_unique<Process>(
      std::vector<std::string>{fabu::testing::CoordinatorBinary(), "serve", "--data", data.string(),
                               "--listen", "127.0.0.1:" + std::to_string(port)},
      out, data / "serve.log");
  EXPECT_TRUE(process->started());
  constexpr std::string_view kMarker = "listening on https://127.0.0.1:";
  std::string text;
  const bool listening = WaitFor(
      [&] {
        text = ReadIfExists(out);
        const auto at = text.find(kMarker);
        return at != std::string::npos && text.find('\n', at) != std::string::npos;
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(listening) << text << ReadIfExists(data / "serve.log");
  listening_port = listening ? std::stoi(text.substr(text.find(kMarker) + kMarker.size())) : 0;
  return process;
}

void Fleet::StartCoordinator(int port) {
  coordinator_ = Serve(CoordinatorDir(), port, port_);
  ASSERT_NE(port_, 0) << CoordinatorLog();
  if (port != 0) {
    ASSERT_EQ(port_, port);
  }
}

pid_t Fleet::CoordinatorPid() const { return coordinator_ ? coordinator_->pid() : -1; }

void Fleet::KillCoordinator() {
  ASSERT_TRUE(coordinator_ && coordinator_->Running());
  coordinator_->Kill();
}

int Fleet::StopCoordinator() { return coordinator_ ? coordinator_->Terminate() : -1; }

std::string Fleet::Url() const { return "https://127.0.0.1:" + std::to_string(port_); }

std::string Fleet::CoordinatorLog() const { return ReadIfExists(CoordinatorDir() / "serve.log"); }

fabu::testing::CommandResult Fleet::As(const std::string& token,
                                       const std::vector<std::string>& args) {
  std::vector<std::string> argv{fabu::testing::FabuCli()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string servers = Url();
  for (const std::string& url : cli_servers_) servers += "," + url;
  return RunCommand(argv, {}, std::chrono::seconds(60),
                    {"FABU_SERVER=" + servers, "FABU_CA=" + Ca().string(), "FABU_TOKEN=" + token});
}

void Fleet::AddAgents(int count, const std::string& labels, bool start, const std::string& prefix) {
  auto token =
      As(admin_, {"enroll-token", "create", "--labels", labels, "--uses", std::to_string(count)});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  const std::string secret = LastLine(token.out);
  const std::size_t first = agents_.size();
  for (int i = 1; i <= count; ++i) {
    Agent agent;
    agent.name = prefix + std::to_string(i);
    agent.root = dir_ / agent.name;
    fs::create_directories(agent.apps());
    std::vector<std::string> argv = {AgentBinary(), "enroll"};
    for (const std::string& server : enroll_servers_) {
      argv.insert(argv.end(), {"--server", server});
    }
    argv.insert(argv.end(), {"--server", Url(), "--ca", Ca().string(), "--token", secret, "--data",
                             agent.data().string(), "--name", agent.name, "--apps-root",
                             agent.apps().string(), "--trust", (dir_ / "publisher.pub").string()});
    auto enrolled = RunCommand(argv);
    ASSERT_EQ(enrolled.exit_code, 0) << enrolled.out << enrolled.err;
    ASSERT_NO_FATAL_FAILURE(EditConfig(agent, {{"health_check_attempts", 1},
                                               {"health_check_delay_seconds", 0},
                                               {"poll_wait_seconds", 5},
                                               {"backoff_initial_seconds", 1},
                                               {"backoff_cap_seconds", 1},
                                               {"connect_timeout_seconds", 5}}));
    agents_.push_back(std::move(agent));
  }
  if (!start) return;
  for (std::size_t i = first; i < agents_.size(); ++i) StartAgent(agents_[i]);
}

void Fleet::StartAgent(Agent& agent) {
  agent.process = std::make_unique<Process>(
      std::vector<std::string>{AgentBinary(), "run", "--data", agent.data().string()},
      agent.root / "agent.out", agent.log());
  ASSERT_TRUE(agent.process->started()) << agent.name;
}

void Fleet::StopAgents() {
  for (auto& agent : agents_) {
    if (agent.process) agent.process->Terminate();
  }
}

void Fleet::EditConfig(const Agent& agent, const json& changes) {
  const fs::path path = agent.data() / "agent.json";
  json config = json::parse(ReadFile(path), nullptr, false);
  ASSERT_TRUE(config.is_object()) << path;
  for (const auto& [key, value] : changes.items()) {
    if (value.is_null()) {
      config.erase(key);
    } else {
      config[key] = value;
    }
  }
  WriteFile(path, config.dump(2));
}

std::string Fleet::Credential(const Agent& agent) const {
  std::string text = ReadFile(agent.data() / "credential");
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string Fleet::AllAgentLogs() const {
  std::string all;
  for (const auto& agent : agents_) {
    std::string log = ReadIfExists(agent.log());
    if (log.size() > 6000) log = log.substr(log.size() - 6000);
    all += "[" + agent.name + "]\n" + log;
  }
  return all;
}

Package Fleet::BuildAndUpload(const std::string& version, std::size_t extra_bytes) {
  Package package;
  package.version = version;
  const fs::path src = dir_ / ("src-" + version);
  WriteFile(src / "app/bin/c3m-video", "#!/bin/sh\necho c3m-video " + version + "\n");
  fs::permissions(src / "app/bin/c3m-video", fs::perms(0755));
  WriteFile(src / "app/etc/c3m-video.conf", "version=" + version + "\n");
  if (extra_bytes > 0) {
    std::mt19937_64 random(42);
    std::string data(extra_bytes, '\0');
    for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
      const std::uint64_t word = random();
      std::memcpy(data.data() + i, &word, 8);
    }
    WriteFile(src / "app/share/blob.bin", data);
  }
  for (const auto& [name, script] : HookScripts()) {
    WriteFile(src / "hooks" / name, script);
    fs::permissions(src / "hooks" / name, fs::perms(0755));
  }
  package.path = dir_ / (std::string(kApp) + "-" + version + ".fabu");
  std::vector<std::string> args{"pack",      "build",
                                "--name",    kApp,
                                "--version", version,
                                "--from",    (src / "app").string(),
                                "--hooks",   (src / "hooks").string(),
                                "--key",     (dir_ / "publisher.key").string(),
                                "--out",     package.path.string()};
  if (extra_bytes > 0) {
    args.push_back("--compression");
    args.push_back("zstd");  // random data does not compress; do not spend time trying
  }
  auto built = fabu::testing::Fabu(args);
  EXPECT_EQ(built.exit_code, 0) << built.err;
  package.size = fs::file_size(package.path);
  auto uploaded = As(rm_, {"package", "upload", package.path.string()});
  EXPECT_EQ(uploaded.exit_code, 0) << uploaded.err;
  package.id = LastLine(uploaded.out);
  EXPECT_EQ(package.id.size(), 64u) << uploaded.out;
  return package;
}

std::string Fleet::Scheduled(const Package& package) {
  json plan = {
      {"title", "C3M-VIDEO " + package.version},
      {"product", kApp},
      {"version", package.version},
      {"category", "minor"},
      {"change_refs", {"CHG-2026-0401"}},
      {"plan",
       {{"purpose", "Ship " + package.version + "."},
        {"scope", "All c3m-video servers."},
        {"participants", "zhang.rm, wang.approver, li.approver, chen.tester"},
        {"communication", "Notice to support."},
        {"work_plan", "Production in one wave."},
        {"follow_up", "Watch errors."},
        {"rollback_plan", "Automatic rollback on a failed health check."},
        {"known_issues", "None."},
        {"baseline", "c3m-video on every host."}}},
      {"packages", {package.id}},
      {"targets", {{"selector", "app=c3m-video"}}},
      {"reviewers", {"wang.approver", "li.approver"}},
      {"golive",
       {{"window",
         {{"start", UtcIn(std::chrono::hours(-1))}, {"end", UtcIn(std::chrono::hours(1))}}},
        {"waves", {"100%"}},
        {"max_failures", "0"},
        {"between_waves", "5m"},
        {"host_timeout", "15m"},
        {"auto_rollback", false}}}};
  plan["golive"].merge_patch(golive_changes_);
  plan.merge_patch(plan_changes_);
  const fs::path file = dir_ / ("plan-" + std::to_string(++files_) + ".json");
  WriteFile(file, plan.dump(2));
  auto created = As(rm_, {"release", "create", "--file", file.string()});
  EXPECT_EQ(created.exit_code, 0) << created.err;
  const std::string id = LastLine(created.out);
  auto step = [&](const std::string& who, const std::vector<std::string>& args) {
    auto r = As(who, args);
    EXPECT_EQ(r.exit_code, 0) << ::testing::PrintToString(args) << "\n" << r.err;
  };
  step(rm_, {"release", "submit", id});
  step(wang_, {"release", "approve", id});
  step(li_, {"release", "approve", id});
  PassTestDeployment(id);
  WriteFile(dir_ / "REPORT.md", "All cases passed.\n");
  step(tester_, {"release", "test-report", id, "--result", "passed", "--file",
                 (dir_ / "REPORT.md").string()});
  step(wang_, {"release", "accept", id});
  step(rm_, {"release", "schedule", id});
  EXPECT_EQ(State(id), "scheduled");
  return id;
}

void Fleet::StartRelease(const std::string& id) {
  auto started = As(rm_, {"release", "start", id});
  ASSERT_EQ(started.exit_code, 0) << started.err;
}

std::string Fleet::Release(const Package& package) {
  const std::string id = Scheduled(package);
  StartRelease(id);
  return id;
}

std::vector<std::vector<std::string>> Fleet::QueryStore(const std::string& query) {
  // SQLite's file or the PostgreSQL database config.json names.
  return fabu::testing::StoreRows(CoordinatorDir(), query);
}

json Fleet::Status(const std::string& release) {
  auto r = As(viewer_, {"release", "status", release, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out, nullptr, false);
}

std::string Fleet::WaitForState(const std::string& release, const std::vector<std::string>& states,
                                std::chrono::seconds deadline) {
  std::string state;
  WaitFor(
      [&] {
        state = State(release);
        return std::find(states.begin(), states.end(), state) != states.end();
      },
      deadline);
  return std::find(states.begin(), states.end(), state) != states.end() ? state : "";
}

json Fleet::Show(const std::string& release) {
  auto r = As(viewer_, {"release", "show", release, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out, nullptr, false);
}

std::string Fleet::State(const std::string& release) {
  const json shown = Show(release);
  return shown.is_object() ? shown.value("state", "") : "";
}

json Fleet::HostsOf(const std::string& release) {
  auto r = As(viewer_, {"release", "hosts", release, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const json parsed = json::parse(r.out, nullptr, false);
  json hosts = json::array();
  if (!parsed.is_object() || !parsed.contains("hosts")) return hosts;
  for (const json& h : parsed["hosts"]) {
    if (h.value("environment", "") != "test") hosts.push_back(h);
  }
  return hosts;
}

// A test host played with the HTTP client for the test deployment every release needs
// before acceptance (procedure §6.2.3): enrolled, deployed to, reporting
// every step to success, then removed so that the fleet's hosts stay the
// agents'.
void Fleet::PassTestDeployment(const std::string& release) {
  std::string name = "qa-" + release;  // host names are lower case
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  fabu::testing::AgentHttpClient agent(Url(), Ca());
  auto http = [&](const std::string& method, const std::string& path, const std::string& credential,
                  const std::string& body) {
    const fabu::testing::HttpReply reply = agent.Request(method, path, credential, body);
    EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
    return reply.Json();
  };
  auto token = As(rm_, {"enroll-token", "create", "--labels", "env=test,app=c3m-video"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  const json enroll = {{"token", LastLine(token.out)},
                       {"name", name},
                       {"labels", json::object()},
                       {"inventory",
                        {{"hostname", name},
                         {"os", "linux"},
                         {"kernel", "6.1.0"},
                         {"arch", "x86_64"},
                         {"cpus", 2},
                         {"memory_bytes", 4294967296ull},
                         {"agent_version", "0.1.0"},
                         {"apps", json::array()}}}};
  const fabu::testing::HttpReply enrolled =
      agent.Request("POST", "/api/v1/agent/enroll", "", enroll.dump());
  const std::string credential = enrolled.Json().value("credential", "");
  ASSERT_FALSE(credential.empty()) << enrolled.status << " " << enrolled.body;
  auto tested = As(rm_, {"release", "test", release});
  ASSERT_EQ(tested.exit_code, 0) << tested.err;
  const json assignment =
      http("GET", "/api/v1/agent/assignment?wait=5", credential, "")["assignment"];
  ASSERT_TRUE(assignment.is_object()) << assignment;
  http("POST", "/api/v1/agent/events", credential,
       fabu::testing::SucceededEvents(assignment).dump());
  auto removed = As(admin_, {"host", "remove", name});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
}

json Fleet::HostsList() {
  auto r = As(viewer_, {"hosts", "list", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out, nullptr, false);
}

std::string Fleet::WaitForFinal(const std::string& release, std::chrono::seconds deadline) {
  std::string state;
  WaitFor(
      [&] {
        state = State(release);
        return state == "deployed" || state == "failed";
      },
      deadline);
  return state == "deployed" || state == "failed" ? state : "";
}

void Fleet::Deploy(const Package& package) {
  const std::string id = Release(package);
  ASSERT_EQ(WaitForFinal(id), "deployed") << HostsOf(id).dump(2);
  for (const auto& agent : agents_) {
    ASSERT_EQ(Current(agent), fs::path("releases") / package.version) << agent.name;
  }
}

void Fleet::HoldEveryAgent() {
  for (const auto& agent : agents_) WriteFile(agent.apps() / "HOLD", "");
}

bool Fleet::AllHeld() {
  return WaitFor([&] {
    return std::ranges::all_of(agents_,
                               [](const Agent& a) { return fs::exists(a.apps() / "HELD"); });
  });
}

fs::path Fleet::Current(const Agent& agent) const {
  std::error_code ec;
  return fs::read_symlink(agent.app() / "current", ec);
}

}  // namespace fabu::e2e
