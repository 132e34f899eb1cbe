#include "coordinator/tls/certificates.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <memory>
#include <set>

#include "platform/fs/files.hpp"
#include "platform/openssl/handles.hpp"

namespace fabu::coordinator {
namespace {

using platform::openssl::Bio;
using platform::openssl::Cert;
using platform::openssl::Extension;
using platform::openssl::OpenSslError;
using platform::openssl::Pkey;

Result<Pkey> NewKey() {
  Pkey key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generating an EC P-256 key");
  return key;
}

Result<void> AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Extension ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(fmt::format("adding certificate extension {}", value));
  }
  return {};
}

Result<Cert> NewCertificate(EVP_PKEY* subject_key, const std::string& common_name, long days) {
  Cert cert(X509_new());
  if (!cert) return OpenSslError("allocating a certificate");
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return OpenSslError("random serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  if (bn == nullptr || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) == nullptr) {
    BN_free(bn);
    return OpenSslError("setting the serial number");
  }
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60 * 60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * days);
  X509_set_pubkey(cert.get(), subject_key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("fabu"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  return cert;
}

Result<std::string> ToPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("encoding a cert");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

Result<std::string> KeyToPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("encoding a private key");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

// Writes a secret exclusively with mode 0600 from the start.
Result<void> WritePrivate(const std::filesystem::path& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(ErrorCode::kIo, "cannot create " + path.string());
  const ssize_t n = ::write(fd, content.data(), content.size());
  const bool ok = n == static_cast<ssize_t>(content.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Fail(ErrorCode::kIo, "cannot write " + path.string());
  return {};
}

// A server certificate for `hostnames` (plus localhost and the loopback
// addresses) signed by `ca`/`ca_key`: server.key, and server.pem (the
// certificate, then the CA).
Result<void> IssueServerCertificate(const DataDir& data, X509* ca, EVP_PKEY* ca_key,
                                    const std::string& ca_pem,
                                    const std::vector<std::string>& hostnames) {
  auto server_key = NewKey();
  if (!server_key) return std::unexpected(server_key.error());
  const std::string common_name = hostnames.empty() ? "localhost" : hostnames.front();
  auto server = NewCertificate(server_key->get(), common_name, 730);
  if (!server) return std::unexpected(server.error());
  X509_set_issuer_name(server->get(), X509_get_subject_name(ca));
  std::set<std::string> names(hostnames.begin(), hostnames.end());
  names.insert("localhost");
  std::string san;
  for (const std::string& name : names) {
    if (name.empty()) continue;
    const bool is_ip = name.find_first_not_of("0123456789.") == std::string::npos ||
                       name.find(':') != std::string::npos;
    if (name == "127.0.0.1" || name == "::1") continue;
    san += fmt::format("{}:{},", is_ip ? "IP" : "DNS", name);
  }
  san += "IP:127.0.0.1,IP:::1";
  for (auto [nid, value] : {std::pair{NID_basic_constraints, std::string("critical,CA:FALSE")},
                            std::pair{NID_key_usage, std::string("critical,digitalSignature")},
                            std::pair{NID_ext_key_usage, std::string("serverAuth")},
                            std::pair{NID_subject_key_identifier, std::string("hash")},
                            std::pair{NID_authority_key_identifier, std::string("keyid:always")},
                            std::pair{NID_subject_alt_name, san}}) {
    if (auto ok = AddExtension(server->get(), ca, nid, value); !ok) return ok;
  }
  if (X509_sign(server->get(), ca_key, EVP_sha256()) == 0) {
    return OpenSslError("signing the server certificate");
  }
  auto server_pem = ToPem(server->get());
  auto server_key_pem = KeyToPem(server_key->get());
  for (const auto* r : {&server_pem, &server_key_pem}) {
    if (!*r) return std::unexpected(r->error());
  }
  if (auto ok = WritePrivate(data.server_key(), *server_key_pem); !ok) return ok;
  return platform::WriteFileDurably(data.server_cert(), *server_pem + ca_pem, 0600);
}

}  // namespace

Result<void> CreateCertificates(const DataDir& data, const std::vector<std::string>& hostnames) {
  auto ca_key = NewKey();
  if (!ca_key) return std::unexpected(ca_key.error());
  auto ca = NewCertificate(ca_key->get(), "fabu coordinator CA", 3650);
  if (!ca) return std::unexpected(ca.error());
  X509_set_issuer_name(ca->get(), X509_get_subject_name(ca->get()));
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}}) {
    if (auto ok = AddExtension(ca->get(), ca->get(), nid, value); !ok) return ok;
  }
  if (X509_sign(ca->get(), ca_key->get(), EVP_sha256()) == 0) return OpenSslError("signing CA");
  auto ca_pem = ToPem(ca->get());
  auto ca_key_pem = KeyToPem(ca_key->get());
  for (const auto* r : {&ca_pem, &ca_key_pem}) {
    if (!*r) return std::unexpected(r->error());
  }
  if (auto ok = WritePrivate(data.ca_key(), *ca_key_pem); !ok) return ok;
  if (auto ok = platform::WriteFileDurably(data.ca_cert(), *ca_pem, 0600); !ok) return ok;
  return IssueServerCertificate(data, ca->get(), ca_key->get(), *ca_pem, hostnames);
}

Result<void> CreateServerCertificate(const DataDir& data,
                                     const std::vector<std::string>& hostnames) {
  auto ca_pem = platform::ReadWholeFile(data.ca_cert());
  if (!ca_pem) return std::unexpected(ca_pem.error());
  auto ca_key_pem = platform::ReadWholeFile(data.ca_key());
  if (!ca_key_pem) return std::unexpected(ca_key_pem.error());
  Bio cert_bio(BIO_new_mem_buf(ca_pem->data(), static_cast<int>(ca_pem->size())));
  Cert ca(cert_bio ? PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!ca) return OpenSslError("reading " + data.ca_cert().string());
  Bio key_bio(BIO_new_mem_buf(ca_key_pem->data(), static_cast<int>(ca_key_pem->size())));
  Pkey ca_key(key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr)
                      : nullptr);
  if (!ca_key) return OpenSslError("reading " + data.ca_key().string());
  if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("{} is not the key of {}", data.ca_key().string(), data.ca_cert().string()));
  }
  return IssueServerCertificate(data, ca.get(), ca_key.get(), *ca_pem, hostnames);
}

}  // namespace fabu::coordinator
