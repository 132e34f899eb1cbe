#include "agent/net/client_identity.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cctype>
#include <ctime>
#include <memory>

#include "platform/fs/files.hpp"

namespace fabu::agent {
namespace {

namespace fs = std::filesystem;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(char* p) const { OPENSSL_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Req = std::unique_ptr<X509_REQ, Free>;
using Bio = std::unique_ptr<BIO, Free>;

std::unexpected<Error> OpenSslError(std::string_view what) {
  const unsigned long code = ERR_get_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return Fail(ErrorCode::kInternal, fmt::format("{}: {}", what, text));
}

Bio MemoryBio(std::string_view text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

Result<Pkey> LoadOrMakeKey(const fs::path& file) {
  std::error_code ec;
  if (fs::exists(file, ec)) {
    auto text = platform::ReadWholeFile(file);
    if (!text) return std::unexpected(text.error());
    Bio bio = MemoryBio(*text);
    Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) {
      ERR_clear_error();
      return Fail(
          ErrorCode::kInvalidArgument,
          fmt::format("{} is not a PEM private key; remove it and try again", file.string()));
    }
    return key;
  }
  Pkey key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("making the client key (EC P-256)");
  Bio out(BIO_new(BIO_s_mem()));
  if (!out ||
      PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("encoding the client key");
  }
  if (auto ok = platform::WriteFileDurably(file, BioText(out.get()), 0600); !ok) {
    return std::unexpected(ok.error());
  }
  return key;
}

std::int64_t UnixTime(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string SerialHex(const ASN1_INTEGER* serial) {
  std::unique_ptr<BIGNUM, Free> bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return {};
  std::unique_ptr<char, Free> hex(BN_bn2hex(bn.get()));
  if (!hex) return {};
  std::string text(hex.get());
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::size_t first = text.find_first_not_of('0');
  return first == std::string::npos ? "0" : text.substr(first);
}

}  // namespace

Result<std::string> PendingCertificateRequest(const fs::path& data, std::string_view host) {
  auto key = LoadOrMakeKey(data / kPendingClientKeyFile);
  if (!key) return std::unexpected(key.error());
  Req req(X509_REQ_new());
  if (!req) return OpenSslError("allocating a CSR");
  const std::string cn(host);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key->get()) != 1 ||
      X509_REQ_sign(req.get(), key->get(), EVP_sha256()) == 0) {
    return OpenSslError("making the CSR");
  }
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509_REQ(out.get(), req.get()) != 1) {
    return OpenSslError("encoding the CSR");
  }
  return BioText(out.get());
}

Result<void> StoreClientIdentity(const fs::path& data, std::string_view certificate_pem) {
  const fs::path pending = data / kPendingClientKeyFile;
  auto key_text = platform::ReadWholeFile(pending);
  if (!key_text) return std::unexpected(key_text.error());
  Bio key_bio = MemoryBio(*key_text);
  Pkey key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  Bio cert_bio = MemoryBio(certificate_pem);
  Cert cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!key || !cert) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalidArgument,
                "the coordinator's certificate or the pending key cannot be read");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("the coordinator's certificate is not for the key {}", pending.string()));
  }
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509(out.get(), cert.get()) != 1) {
    return OpenSslError("encoding the client certificate");
  }
  const std::string pair = BioText(out.get()) + *key_text;
  if (auto ok = platform::WriteFileDurably(data / kClientIdentityFile, pair, 0600); !ok) {
    return ok;
  }
  ForgetPendingKey(data);
  return {};
}

void ForgetPendingKey(const fs::path& data) {
  std::error_code ec;
  fs::remove(data / kPendingClientKeyFile, ec);
}

Result<std::optional<ClientCertificateInfo>> ReadClientIdentity(const fs::path& data) {
  const fs::path file = data / kClientIdentityFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::optional<ClientCertificateInfo>();
  auto text = platform::ReadWholeFile(file);
  if (!text) return std::unexpected(text.error());
  Bio bio = MemoryBio(*text);
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{} holds no PEM certificate", file.string()));
  }
  ClientCertificateInfo info;
  info.serial = SerialHex(X509_get0_serialNumber(cert.get()));
  info.not_before = UnixTime(X509_get0_notBefore(cert.get()));
  info.not_after = UnixTime(X509_get0_notAfter(cert.get()));
  return std::optional<ClientCertificateInfo>(info);
}

}  // namespace fabu::agent
