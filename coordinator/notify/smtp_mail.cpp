#include "coordinator/notify/smtp_mail.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

#include "coordinator/common/json_input.hpp"
#include "platform/http/curl_handles.hpp"

namespace fabu::coordinator {
namespace {

bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// An unstructured header value: as is when ASCII, else one RFC 2047
// encoded word in base64 (OpenSSL's encoder).
std::string HeaderText(std::string_view text) {
  std::string clean;
  for (char c : text) clean += (c == '\r' || c == '\n') ? ' ' : c;
  if (IsAscii(clean)) return clean;
  std::string encoded(4 * ((clean.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                reinterpret_cast<const unsigned char*>(clean.data()),
                                static_cast<int>(clean.size()));
  encoded.resize(static_cast<std::size_t>(n));
  return "=?UTF-8?B?" + encoded + "?=";
}

struct Upload {
  const std::string* data;
  std::size_t offset = 0;
};

size_t ReadUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* upload = static_cast<Upload*>(user);
  const std::size_t n = std::min(size * count, upload->data->size() - upload->offset);
  std::memcpy(buffer, upload->data->data() + upload->offset, n);
  upload->offset += n;
  return n;
}

}  // namespace

Result<SmtpConfig> SmtpConfig::FromJson(const nlohmann::json& json, std::string_view path) {
  if (auto ok = CheckObject(json, path,
                            {{"url", JsonType::kString, true},
                             {"from", JsonType::kString, true},
                             {"username", JsonType::kString},
                             {"password_file", JsonType::kString},
                             {"starttls", JsonType::kBoolean},
                             {"ca_file", JsonType::kString},
                             {"timeout_seconds", JsonType::kInteger}});
      !ok) {
    return std::unexpected(ok.error());
  }
  SmtpConfig c;
  c.url = json["url"].get<std::string>();
  c.from = json["from"].get<std::string>();
  if (!c.url.starts_with("smtp://") && !c.url.starts_with("smtps://")) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}.url: \"{}\" must start with smtp:// or smtps://", path, c.url));
  }
  if (c.from.find('@') == std::string::npos ||
      c.from.find_first_of("\r\n<> ") != std::string::npos) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("{}.from: \"{}\" is not one address like fabu@example.com", path, c.from));
  }
  c.username = json.value("username", "");
  c.password_file = json.value("password_file", "");
  if (!c.username.empty() && c.password_file.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}.password_file: needed with {}.username", path, path));
  }
  c.starttls = json.value("starttls", false);
  c.ca_file = json.value("ca_file", "");
  if (json.contains("timeout_seconds")) {
    const auto t = json["timeout_seconds"].get<std::int64_t>();
    if (t < 1 || t > 600) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}.timeout_seconds: must be 1-600", path));
    }
    c.timeout = std::chrono::seconds(t);
  }
  return c;
}

nlohmann::json SmtpConfig::ToJson() const {
  return {{"url", url},
          {"from", from},
          {"username", username},
          {"password_file", password_file},
          {"starttls", starttls},
          {"ca_file", ca_file},
          {"timeout_seconds", timeout.count()}};
}

std::string Rfc5322Date(protocol::UnixSeconds at) {
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = static_cast<std::time_t>(at);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} +0000", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string FormatMail(const MailMessage& m) {
  std::string out;
  out += "From: " + HeaderText(m.from) + "\r\n";
  out += "To: " + HeaderText(m.to) + "\r\n";
  out += "Subject: " + HeaderText(m.subject) + "\r\n";
  out += "Date: " + Rfc5322Date(m.date) + "\r\n";
  out += "Message-ID: <" + HeaderText(m.message_id) + ">\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=UTF-8\r\n";
  out += "Content-Transfer-Encoding: 8bit\r\n";
  out += "\r\n";
  for (char c : m.text) {
    if (c == '\r') continue;
    if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  if (!out.ends_with("\r\n")) out += "\r\n";
  return out;
}

Result<void> SendMail(const SmtpConfig& config, const std::string& password,
                      const MailMessage& message) {
  auto handle = platform::NewCurlHandle();
  if (!handle) return std::unexpected(handle.error());
  CURL* c = handle->get();
  const std::string body = FormatMail(message);
  Upload upload{&body};
  const std::string from = "<" + config.from + ">", to = "<" + message.to + ">";
  platform::CurlList recipients(curl_slist_append(nullptr, to.c_str()));
  char error_text[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, config.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, recipients.get());
  if (config.starttls) curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!config.username.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, config.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, password.c_str());
  }
  if (!config.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, config.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(config.timeout.count()));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadUpload);
  curl_easy_setopt(c, CURLOPT_READDATA, &upload);
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return Fail(ErrorCode::kUnavailable,
                fmt::format("mail to {} via {}: {}", message.to, config.url,
                            error_text[0] != '\0' ? error_text : curl_easy_strerror(rc)));
  }
  return {};
}

Result<std::string> ReadSmtpPassword(const SmtpConfig& config,
                                     const std::filesystem::path& data_root) {
  if (config.password_file.empty()) return std::string();
  std::filesystem::path path(config.password_file);
  if (path.is_relative()) path = data_root / path;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("smtp.password_file: cannot read {}", path.string()));
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string password = text.str();
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
    password.pop_back();
  }
  if (password.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("smtp.password_file: {} is empty", path.string()));
  }
  return password;
}

}  // namespace fabu::coordinator
