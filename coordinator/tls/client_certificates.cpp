#include "coordinator/tls/client_certificates.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <fstream>
#include <sstream>

#include "platform/openssl/handles.hpp"

namespace fabu::coordinator {
namespace {

using platform::openssl::Bignum;
using platform::openssl::Bio;
using platform::openssl::Cert;
using platform::openssl::Extension;
using platform::openssl::MemoryBio;
using platform::openssl::OpenSslError;
using platform::openssl::OpenSslReason;
using platform::openssl::OsslString;
using platform::openssl::Pkey;
using platform::openssl::Req;
using platform::openssl::SerialHex;
using platform::openssl::UnixTime;

// The subject's CN, "" when there is none or it is not one UTF-8 string.
std::string CommonName(const X509_NAME* name) {
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, index) >= 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return {};
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
  OPENSSL_free(utf8);
  return cn;
}

// "P-256", "Ed25519", or what else the key is.
std::string KeyKind(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519")) return "Ed25519";
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = "";
    std::size_t length = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &length) == 1) {
      const std::string name(group, length);
      if (name == "prime256v1" || name == "P-256") return "P-256";
      return "EC " + name;
    }
    return "EC";
  }
  const char* type = EVP_PKEY_get0_type_name(key);
  return type != nullptr ? type : "unknown";
}

Result<Req> ParseCsr(std::string_view csr_pem, std::string_view host) {
  const auto bad = [](std::string why) {
    return Fail(ErrorCode::kInvalidArgument, "csr: " + std::move(why));
  };
  if (csr_pem.empty()) return bad("empty: send a PEM certificate signing request");
  Bio bio = MemoryBio(csr_pem);
  Req req(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!req) {
    ERR_clear_error();
    return bad("not a PEM certificate signing request (\"-----BEGIN CERTIFICATE REQUEST-----\")");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr) {
    ERR_clear_error();
    return bad("its public key cannot be read");
  }
  const std::string kind = KeyKind(key);
  if (kind != "P-256" && kind != "Ed25519") {
    return bad(fmt::format("the key is {}; only EC P-256 and Ed25519 keys are accepted", kind));
  }
  if (X509_REQ_verify(req.get(), key) != 1) {
    ERR_clear_error();
    return bad("its signature does not verify with its own key");
  }
  const std::string cn = CommonName(X509_REQ_get_subject_name(req.get()));
  if (cn != host) {
    std::string shown = cn.substr(0, 64);
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '?';
    }
    return bad(cn.empty()
                   ? fmt::format("its subject has no single CN; it must be CN={}", host)
                   : fmt::format("its CN is \"{}\", not the host's name \"{}\"", shown, host));
  }
  return req;
}

Result<void> AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Extension ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(fmt::format("adding certificate extension {}", value));
  }
  return {};
}

Result<std::string> ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(ErrorCode::kIo, "cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

struct ClientCertificateAuthority::Keys {
  Cert ca;
  Pkey key;
};

Result<void> CheckCertificateRequest(std::string_view csr_pem, std::string_view host) {
  auto req = ParseCsr(csr_pem, host);
  if (!req) return std::unexpected(req.error());
  return {};
}

Result<ClientCertificateAuthority> ClientCertificateAuthority::Load(const DataDir& data) {
  auto ca_pem = ReadText(data.ca_cert());
  if (!ca_pem) return std::unexpected(ca_pem.error());
  auto key_pem = ReadText(data.ca_key());
  if (!key_pem) return std::unexpected(key_pem.error());
  auto keys = std::make_shared<Keys>();
  Bio ca_bio = MemoryBio(*ca_pem);
  keys->ca.reset(PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr));
  Bio key_bio = MemoryBio(*key_pem);
  keys->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!keys->ca || !keys->key) {
    return Fail(ErrorCode::kIo,
                fmt::format("reading the CA {} and its key {}: {}", data.ca_cert().string(),
                            data.ca_key().string(), OpenSslReason()));
  }
  if (X509_check_private_key(keys->ca.get(), keys->key.get()) != 1) {
    ERR_clear_error();
    return Fail(ErrorCode::kIo, fmt::format("{} is not the key of {}", data.ca_key().string(),
                                            data.ca_cert().string()));
  }
  return ClientCertificateAuthority(std::move(keys));
}

Result<IssuedCertificate> ClientCertificateAuthority::Sign(std::string_view csr_pem,
                                                           std::string_view host, std::int64_t now,
                                                           std::int64_t lifetime_seconds) const {
  return SignValid(csr_pem, host, now, now + lifetime_seconds);
}

Result<IssuedCertificate> ClientCertificateAuthority::SignValid(std::string_view csr_pem,
                                                                std::string_view host,
                                                                std::int64_t not_before,
                                                                std::int64_t not_after) const {
  auto req = ParseCsr(csr_pem, host);
  if (!req) return std::unexpected(req.error());
  Cert cert(X509_new());
  if (!cert) return OpenSslError("allocating a certificate");
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return OpenSslError("random serial");
  // Positive (top bit clear) and its first byte at least 0x40, so its hex
  // form is always 32 digits (BN_bn2hex writes no leading zero); 126 random
  // bits are left.
  serial[0] = static_cast<unsigned char>((serial[0] & 0x3f) | 0x40);
  Bignum bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return OpenSslError("setting the serial number");
  }
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(not_after)) == nullptr) {
    return OpenSslError("setting the validity");
  }
  if (X509_set_pubkey(cert.get(), X509_REQ_get0_pubkey(req->get())) != 1) {
    return OpenSslError("setting the public key");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn(host);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("fabu agent"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(keys_->ca.get()));
  for (auto [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
        std::pair{NID_key_usage, "critical,digitalSignature"},
        std::pair{NID_ext_key_usage, "clientAuth"}, std::pair{NID_subject_key_identifier, "hash"},
        std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (auto ok = AddExtension(cert.get(), keys_->ca.get(), nid, value); !ok) {
      return std::unexpected(ok.error());
    }
  }
  if (X509_sign(cert.get(), keys_->key.get(), EVP_sha256()) == 0) {
    return OpenSslError("signing the client certificate");
  }
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509(out.get(), cert.get()) != 1) {
    return OpenSslError("encoding the client certificate");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  IssuedCertificate issued;
  issued.pem.assign(data, static_cast<std::size_t>(size));
  issued.serial = SerialHex(X509_get0_serialNumber(cert.get()));
  issued.not_before = UnixTime(X509_get0_notBefore(cert.get()));
  issued.not_after = UnixTime(X509_get0_notAfter(cert.get()));
  return issued;
}

namespace {

PeerCertificate Describe(X509* cert) {
  PeerCertificate peer;
  peer.present = true;
  peer.common_name = CommonName(X509_get_subject_name(cert));
  peer.serial = SerialHex(X509_get0_serialNumber(cert));
  peer.not_before = UnixTime(X509_get0_notBefore(cert));
  peer.not_after = UnixTime(X509_get0_notAfter(cert));
  return peer;
}

}  // namespace

Result<void> AskForClientCertificates(SSL_CTX* context, const std::filesystem::path& ca_pem) {
  if (SSL_CTX_load_verify_locations(context, ca_pem.c_str(), nullptr) != 1) {
    return Fail(ErrorCode::kIo,
                fmt::format("loading the client CA {}: {}", ca_pem.string(), OpenSslReason()));
  }
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca_pem.c_str());
  if (names == nullptr) {
    return Fail(ErrorCode::kIo, fmt::format("reading the client CA's name from {}: {}",
                                            ca_pem.string(), OpenSslReason()));
  }
  SSL_CTX_set_client_CA_list(context, names);  // takes ownership
  // Without SSL_VERIFY_FAIL_IF_NO_PEER_CERT: a client without a certificate
  // is served (people, curl, browsers). A certificate that fails
  // verification does not end the handshake either: the result is kept in
  // the session (SSL_get_verify_result) and judged for each agent request,
  // which can then say what was wrong.
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  SSL_CTX_set_verify_depth(context, 1);
  static constexpr unsigned char kContext[] = "fabu-coordinator";
  if (SSL_CTX_set_session_id_context(context, kContext, sizeof kContext - 1) != 1) {
    return Fail(ErrorCode::kInternal, "setting the TLS session id context");
  }
  return {};
}

PeerCertificate ReadPeerCertificate(SSL* ssl) {
  X509* cert = ssl == nullptr ? nullptr : SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return {};
  PeerCertificate peer = Describe(cert);
  const long verified = SSL_get_verify_result(ssl);
  if (verified != X509_V_OK) peer.verify_error = X509_verify_cert_error_string(verified);
  return peer;
}

Result<PeerCertificate> DescribeCertificate(std::string_view pem) {
  Bio bio = MemoryBio(pem);
  Cert cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalidArgument, "not a PEM certificate");
  }
  return Describe(cert.get());
}

}  // namespace fabu::coordinator
