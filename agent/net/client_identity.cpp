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
#include "platform/openssl/handles.hpp"

namespace fabu::agent {
namespace {

namespace fs = std::filesystem;

using platform::openssl::Bio;
using platform::openssl::Cert;
using platform::openssl::MemoryBio;
using platform::openssl::OpenSslError;
using platform::openssl::Pkey;
using platform::openssl::Req;
using platform::openssl::SerialHex;
using platform::openssl::UnixTime;

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
