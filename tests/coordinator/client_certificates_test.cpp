// Agents' client certificates: the CSR checks, the certificate the CA signs
// for one, and the check of a request's certificate against the host's
// record (tls/client_certificates.hpp, hosts/agent_certificates.hpp).
#include "coordinator/tls/client_certificates.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "coordinator/hosts/agent_certificates.hpp"
#include "coordinator/tls/certificates.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::coordinator {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, Free>;

std::string Csr(EVP_PKEY* key, const std::string& cn, const EVP_MD* digest = EVP_sha256()) {
  std::unique_ptr<X509_REQ, Free> req(X509_REQ_new());
  if (!cn.empty()) {
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  }
  X509_REQ_set_pubkey(req.get(), key);
  X509_REQ_sign(req.get(), key, digest);
  std::unique_ptr<BIO, Free> out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(out.get(), req.get());
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

Pkey P256() { return Pkey(EVP_EC_gen("P-256")); }

class ClientCertificatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(CreateCertificates(data_, {}));
    auto ca = ClientCertificateAuthority::Load(data_);
    ASSERT_TRUE(ca) << ca.error().message();
    ca_.emplace(std::move(*ca));
  }
  fabu::testing::TempDir dir_;
  DataDir data_{dir_.path()};
  std::optional<ClientCertificateAuthority> ca_;
};

TEST_F(ClientCertificatesTest, AP256OrEd25519CsrForTheHostIsAccepted) {
  Pkey ec = P256();
  EXPECT_TRUE(CheckCertificateRequest(Csr(ec.get(), "web-1"), "web-1"));
  Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  auto ok = CheckCertificateRequest(Csr(ed.get(), "web-1", nullptr), "web-1");
  EXPECT_TRUE(ok) << ok.error().message();
}

TEST_F(ClientCertificatesTest, ACsrForAnotherNameIsRefusedNamingBoth) {
  Pkey key = P256();
  auto refused = CheckCertificateRequest(Csr(key.get(), "web-2"), "web-1");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message().find("its CN is \"web-2\", not the host's name \"web-1\""),
            std::string::npos)
      << refused.error().message();
  auto no_cn = CheckCertificateRequest(Csr(key.get(), ""), "web-1");
  ASSERT_FALSE(no_cn);
  EXPECT_NE(no_cn.error().message().find("no single CN"), std::string::npos);
}

TEST_F(ClientCertificatesTest, OtherKeysGarbageAndBrokenSignaturesAreRefused) {
  Pkey rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  auto refused = CheckCertificateRequest(Csr(rsa.get(), "web-1"), "web-1");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("the key is RSA; only EC P-256 and Ed25519"),
            std::string::npos)
      << refused.error().message();
  Pkey p384(EVP_EC_gen("P-384"));
  auto curve = CheckCertificateRequest(Csr(p384.get(), "web-1"), "web-1");
  ASSERT_FALSE(curve);
  EXPECT_NE(curve.error().message().find("secp384r1"), std::string::npos)
      << curve.error().message();

  auto garbage = CheckCertificateRequest("hello", "web-1");
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message().find("not a PEM certificate signing request"),
            std::string::npos);

  // The signature covers the subject: one byte of the CN changed in the DER.
  Pkey key = P256();
  const std::string good = Csr(key.get(), "web-1");
  std::unique_ptr<BIO, Free> in(BIO_new_mem_buf(good.data(), static_cast<int>(good.size())));
  std::unique_ptr<X509_REQ, Free> req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
  unsigned char* der = nullptr;
  const int length = i2d_X509_REQ(req.get(), &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  const std::size_t at = bytes.find("web-1");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 4] = '2';
  const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::unique_ptr<X509_REQ, Free> tampered(d2i_X509_REQ(nullptr, &p, length));
  ASSERT_TRUE(tampered);
  std::unique_ptr<BIO, Free> out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(out.get(), tampered.get());
  char* text = nullptr;
  const long size = BIO_get_mem_data(out.get(), &text);
  auto broken = CheckCertificateRequest(std::string(text, static_cast<std::size_t>(size)), "web-2");
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message().find("signature does not verify"), std::string::npos)
      << broken.error().message();
}

TEST_F(ClientCertificatesTest, TheCaSignsAClientCertificateForTheCsrsKeyAndTheHostOnly) {
  Pkey key = P256();
  const std::int64_t now = 1'800'000'000;
  auto issued = ca_->Sign(Csr(key.get(), "web-1"), "web-1", now, 30 * 86400);
  ASSERT_TRUE(issued) << issued.error().message();
  EXPECT_EQ(issued->not_before, now);
  EXPECT_EQ(issued->not_after, now + 30 * 86400);
  EXPECT_EQ(issued->serial.size(), 32u);  // 128 random bits
  auto described = DescribeCertificate(issued->pem);
  ASSERT_TRUE(described);
  EXPECT_EQ(described->common_name, "web-1");
  EXPECT_EQ(described->serial, issued->serial);

  std::unique_ptr<BIO, Free> in(
      BIO_new_mem_buf(issued->pem.data(), static_cast<int>(issued->pem.size())));
  std::unique_ptr<X509, Free> cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_TRUE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_CLIENT);
  EXPECT_FALSE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  // Two certificates never share a serial.
  auto second = ca_->Sign(Csr(key.get(), "web-1"), "web-1", now, 86400);
  ASSERT_TRUE(second);
  EXPECT_NE(second->serial, issued->serial);
  // And the CA refuses what the checks refuse.
  EXPECT_FALSE(ca_->Sign(Csr(key.get(), "web-2"), "web-1", now, 86400));
}

TEST(AgentCertificateCheckTest, SaysWhatIsWrongWithARequestsCertificate) {
  const std::int64_t now = 1'800'000'000;
  AgentIdentity who{"web-1", "aa11", now + 1000, "", 0};
  PeerCertificate good{true, "", "web-1", "aa11", now + 1000, now - 1000};
  const auto mode = AgentCertificateMode::kOptional;
  EXPECT_TRUE(CheckAgentCertificate(who, good, now, mode));

  auto message = [&](const PeerCertificate& peer, const AgentIdentity& identity) {
    auto checked = CheckAgentCertificate(identity, peer, now, mode);
    EXPECT_FALSE(checked);
    if (checked) return std::string();
    EXPECT_EQ(checked.error().code(), ErrorCode::kUnauthenticated);
    return checked.error().message();
  };
  EXPECT_NE(message(PeerCertificate{}, who).find("no client certificate was sent"),
            std::string::npos);
  PeerCertificate other = good;
  other.common_name = "web-2";
  EXPECT_NE(message(other, who).find("is for \"web-2\""), std::string::npos);
  PeerCertificate expired = good;
  expired.not_after = now;
  EXPECT_NE(message(expired, who).find("expired at"), std::string::npos);
  PeerCertificate foreign = good;
  foreign.verify_error = "unable to get local issuer certificate";
  EXPECT_NE(message(foreign, who).find("not issued by this coordinator's CA"), std::string::npos);
  PeerCertificate replaced = good;
  replaced.serial = "bb22";
  EXPECT_NE(message(replaced, who).find("serial bb22 is not the host's current one (aa11)"),
            std::string::npos);

  // The serial a renewal replaced passes until its end.
  AgentIdentity renewed{"web-1", "cc33", now + 3000, "aa11", now + 10};
  EXPECT_TRUE(CheckAgentCertificate(renewed, good, now, mode));
  renewed.previous_until = now;
  EXPECT_FALSE(CheckAgentCertificate(renewed, good, now, mode));

  // A host without a certificate on record: its credential alone, unless
  // certificates are required.
  AgentIdentity legacy{"web-1", "", 0, "", 0};
  EXPECT_TRUE(CheckAgentCertificate(legacy, PeerCertificate{}, now, mode));
  auto required =
      CheckAgentCertificate(legacy, PeerCertificate{}, now, AgentCertificateMode::kRequired);
  ASSERT_FALSE(required);
  EXPECT_NE(required.error().message().find("agent_certificates: required"), std::string::npos);
}

}  // namespace
}  // namespace fabu::coordinator
