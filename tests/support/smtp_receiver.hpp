// A minimal SMTP server on 127.0.0.1 for tests of outgoing e-mail: it
// answers 220/250/354/221 to what libcurl says (EHLO/HELO, MAIL FROM, RCPT
// TO, DATA, RSET, NOOP, QUIT) and keeps each message's envelope and DATA.
// No TLS, no authentication. One connection at a time on its own thread;
// the destructor stops it. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fabu::testing {

struct ReceivedMail {
  std::string from;                     // MAIL FROM:<...>, without brackets
  std::vector<std::string> recipients;  // RCPT TO, without brackets
  std::string data;                     // the message as sent, CRLF, dot-escaping undone
};

class SmtpReceiver {
 public:
  // Listens on `port`, or on a port of the system's choice when 0.
  explicit SmtpReceiver(std::uint16_t port = 0);
  ~SmtpReceiver();
  SmtpReceiver(const SmtpReceiver&) = delete;
  SmtpReceiver& operator=(const SmtpReceiver&) = delete;

  std::uint16_t port() const;
  std::string url() const;  // smtp://127.0.0.1:PORT
  std::vector<ReceivedMail> mails() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabu::testing
