// A plain-HTTP receiver on 127.0.0.1 (port 0) for tests of outgoing
// deliveries: webhooks and an iTop REST stand-in (Boost.Beast).
//
// Every request is recorded (method, target, headers, body) together with
// the status answered. `Answer` decides the answer; by default 200 "{}".
// Runs its own I/O thread; the destructor stops it. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace fabu::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
  int status = 0;  // what was answered
};

class HttpReceiver {
 public:
  // status and body of the answer to a request.
  using Answer = std::function<std::pair<int, std::string>(const ReceivedRequest&)>;

  HttpReceiver();
  ~HttpReceiver();
  HttpReceiver(const HttpReceiver&) = delete;
  HttpReceiver& operator=(const HttpReceiver&) = delete;

  int port() const;
  std::string url(const std::string& path = "/") const;  // http://127.0.0.1:PORT/path
  void SetAnswer(Answer answer);
  // Shorthand: answer every request with `status` and `body`.
  void SetStatus(int status, std::string body = "{}");
  std::vector<ReceivedRequest> requests() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabu::testing
