// Owners of OpenSSL 3 objects and the error of a failed OpenSSL call, shared
// by the agent's client identity (agent/net/client_identity.cpp) and the
// coordinator's CA (coordinator/tls/). Header only; the user links OpenSSL.
#pragma once

#include <fmt/format.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::platform::openssl {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(char* p) const { OPENSSL_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Req = std::unique_ptr<X509_REQ, Free>;
using Extension = std::unique_ptr<X509_EXTENSION, Free>;
using Bio = std::unique_ptr<BIO, Free>;
using Bignum = std::unique_ptr<BIGNUM, Free>;
using OsslString = std::unique_ptr<char, Free>;

// OpenSSL's reason for the last failure on this thread ("unknown error" when
// its queue is empty); the queue is cleared.
inline std::string OpenSslReason() {
  const unsigned long code = ERR_get_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return text;
}

// kInternal "<what>: <OpenSSL's reason>".
inline std::unexpected<Error> OpenSslError(std::string_view what) {
  return Fail(ErrorCode::kInternal, fmt::format("{}: {}", what, OpenSslReason()));
}

// A read-only memory BIO over `text` (which must outlive it).
inline Bio MemoryBio(std::string_view text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// A certificate's serial number in lower-case hex without leading zeros
// ("0" for zero); "" when it cannot be read.
inline std::string SerialHex(const ASN1_INTEGER* serial) {
  Bignum bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return {};
  OsslString hex(BN_bn2hex(bn.get()));
  if (!hex) return {};
  std::string text(hex.get());
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::size_t first = text.find_first_not_of('0');
  return first == std::string::npos ? "0" : text.substr(first);
}

// An ASN.1 time (a certificate's notBefore, notAfter) as Unix seconds; 0
// when it cannot be read.
inline std::int64_t UnixTime(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace fabu::platform::openssl
