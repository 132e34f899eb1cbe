// E-mail for release notices: the "smtp" section of config.json and one
// message sent with libcurl's SMTP.
//
//   "smtp": {"url": "smtp://mail.example:587",   // or smtps://host:465
//            "from": "fabu@example.com",
//            "username": "fabu", "password_file": "smtp.pw",   // optional
//            "starttls": true,                   // require STARTTLS on smtp://
//            "ca_file": "", "timeout_seconds": 30}
//
// The message is plain text in UTF-8 (8bit) with From, To, Subject (RFC
// 2047 encoded when not ASCII), Date, Message-ID, MIME-Version and
// Content-Type headers. libcurl escapes lines starting with ".". Transport
// failures and refusals are kUnavailable with libcurl's words (the server's
// answer included). Every call uses its own handle; thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "protocol/error.hpp"
#include "protocol/timestamp.hpp"

namespace fabu::coordinator {

struct SmtpConfig {
  std::string url;  // "" when e-mail is not configured
  std::string from;
  std::string username;
  std::string password_file;  // relative to the data directory
  bool starttls = false;
  std::string ca_file;
  std::chrono::seconds timeout{30};

  // kInvalidArgument naming the field ("smtp.url") when wrong.
  static Result<SmtpConfig> FromJson(const nlohmann::json& json, std::string_view path);
  nlohmann::json ToJson() const;
};

struct MailMessage {
  std::string from;
  std::string to;
  std::string subject;     // UTF-8
  std::string text;        // UTF-8, "\n" line ends
  std::string message_id;  // without the angle brackets: "R-1.scheduled.7.N-1@example.com"
  protocol::UnixSeconds date = 0;
};

// The RFC 5322 message, CRLF line ends.
std::string FormatMail(const MailMessage& message);

// "Thu, 26 Nov 2026 01:32:08 +0000"
std::string Rfc5322Date(protocol::UnixSeconds at);

// Sends `message` through `config.url`, with `password` when a username is set.
Result<void> SendMail(const SmtpConfig& config, const std::string& password,
                      const MailMessage& message);

// Reads the password file (relative to `data_root`); "" when none is set.
Result<std::string> ReadSmtpPassword(const SmtpConfig& config,
                                     const std::filesystem::path& data_root);

}  // namespace fabu::coordinator
