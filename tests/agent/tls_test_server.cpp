#include "tests/agent/tls_test_server.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>

#include "tests/support/run_command.hpp"

namespace fabu::agent::testing {

namespace fs = std::filesystem;

TlsTestServer::TlsTestServer(const fs::path& dir, Handler handler)
    : cert_(dir / "server-cert.pem"), key_(dir / "server-key.pem"), handler_(std::move(handler)) {
  // A client that hangs up while the server writes must be an error for
  // this connection, not a SIGPIPE that kills the whole test binary.
  std::signal(SIGPIPE, SIG_IGN);
  fs::create_directories(dir);
  // A certificate already there is shared: servers made on one `dir` stand
  // for coordinators whose certificates one CA signed.
  std::error_code ec;
  const bool shared = fs::exists(cert_, ec) && fs::exists(key_, ec);
  auto made = shared ? fabu::testing::CommandResult{0, "", ""}
                     : fabu::testing::RunCommand({"openssl",
                                                  "req",
                                                  "-x509",
                                                  "-newkey",
                                                  "ec",
                                                  "-pkeyopt",
                                                  "ec_paramgen_curve:prime256v1",
                                                  "-nodes",
                                                  "-keyout",
                                                  key_.string(),
                                                  "-out",
                                                  cert_.string(),
                                                  "-days",
                                                  "1",
                                                  "-subj",
                                                  "/CN=127.0.0.1",
                                                  "-addext",
                                                  "subjectAltName=IP:127.0.0.1",
                                                  "-addext",
                                                  "basicConstraints=critical,CA:TRUE"});
  if (made.exit_code != 0) return;
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return;
  ctx_ = ctx;
  if (SSL_CTX_use_certificate_file(ctx, cert_.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key_.c_str(), SSL_FILETYPE_PEM) != 1) {
    return;
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    return;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

TlsTestServer::~TlsTestServer() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

std::string TlsTestServer::url() const { return fmt::format("https://127.0.0.1:{}", port_); }

std::vector<TestRequest> TlsTestServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::size_t TlsTestServer::request_count() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

std::string TlsTestServer::Response(int status, const std::string& body,
                                    const std::string& extra_headers) {
  return fmt::format("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{}", status,
                     body.size(), extra_headers, body);
}

void TlsTestServer::Serve() {
  while (!stopping_) {
    // Wake now and then to notice the destructor.
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    HandleConnection(fd);
    ::close(fd);
  }
}

void TlsTestServer::HandleConnection(int fd) {
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ctx_));
  SSL_set_fd(ssl, fd);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (SSL_accept(ssl) != 1) {
    SSL_free(ssl);
    return;
  }
  std::string data;
  char buffer[4096];
  std::size_t header_end = std::string::npos;
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    const int n = SSL_read(ssl, buffer, sizeof buffer);
    if (n <= 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  if (header_end == std::string::npos) {
    SSL_free(ssl);
    return;
  }
  TestRequest request;
  std::size_t line_end = data.find("\r\n");
  const std::string first = data.substr(0, line_end);
  const auto sp1 = first.find(' ');
  const auto sp2 = first.find(' ', sp1 + 1);
  request.method = first.substr(0, sp1);
  request.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  std::size_t pos = line_end + 2;
  while (pos < header_end) {
    const std::size_t end = data.find("\r\n", pos);
    const std::string line = data.substr(pos, end - pos);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::ranges::transform(name, name.begin(),
                             [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      request.headers[name] = value;
    }
    pos = end + 2;
  }
  request.body = data.substr(header_end + 4);
  if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
    const std::size_t want = std::stoul(it->second);
    while (request.body.size() < want) {
      const int n = SSL_read(ssl, buffer, sizeof buffer);
      if (n <= 0) break;
      request.body.append(buffer, static_cast<std::size_t>(n));
    }
  }
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(request);
  }
  const std::string answer = handler_(request);
  std::size_t sent = 0;
  while (sent < answer.size()) {
    const int n = SSL_write(ssl, answer.data() + sent,
                            static_cast<int>(std::min<std::size_t>(answer.size() - sent, 16384)));
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
}

}  // namespace fabu::agent::testing
