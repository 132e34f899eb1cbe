// A small real HTTPS server on 127.0.0.1 for the agent's network tests: it
// listens on port 0 with a certificate made by the `openssl` CLI for
// 127.0.0.1 (self-signed, so ca() is what the client pins), reads each
// request (headers and a Content-Length body), asks the handler for the raw
// bytes to answer, writes them and closes the connection. A handler can thus
// answer 200, 206, 503, or cut a body short or send too much: what a real
// peer might do.
//
// One connection at a time, on a thread of its own; the handler runs there.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fabu::agent::testing {

struct TestRequest {
  std::string method;
  std::string target;                          // "/path?query"
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class TlsTestServer {
 public:
  using Handler = std::function<std::string(const TestRequest&)>;

  // Makes the certificate under `dir`, or uses the one a server made there
  // before (several servers on one `dir`: coordinators of one CA, each on
  // its own port); check started().
  TlsTestServer(const std::filesystem::path& dir, Handler handler);
  ~TlsTestServer();
  TlsTestServer(const TlsTestServer&) = delete;
  TlsTestServer& operator=(const TlsTestServer&) = delete;

  bool started() const { return port_ != 0; }
  int port() const { return port_; }
  std::string url() const;  // https://127.0.0.1:PORT
  std::filesystem::path ca() const { return cert_; }

  std::vector<TestRequest> requests() const;
  std::size_t request_count() const;

  // "HTTP/1.1 <status> X\r\nContent-Length: N\r\n<extra>\r\n<body>".
  static std::string Response(int status, const std::string& body,
                              const std::string& extra_headers = {});

 private:
  void Serve();
  void HandleConnection(int fd);

  std::filesystem::path cert_;
  std::filesystem::path key_;
  Handler handler_;
  void* ctx_ = nullptr;  // SSL_CTX
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<TestRequest> requests_;
  std::thread thread_;
};

}  // namespace fabu::agent::testing
