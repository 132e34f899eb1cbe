// Agents identified by client certificates (mutual TLS; docs/security.md):
// the real fabu-coordinator and fabu-agent processes. An agent enrolls with
// its own key and deploys with its certificate; nothing but the host's own
// certificate together with its own credential acts as the host; revocation
// and expiry refuse the certificate at the next request; a renewing agent
// renews before expiry and keeps working; a bad CSR is refused at enrollment.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <ctime>

#include "coordinator/common/data_dir.hpp"
#include "coordinator/tls/certificates.hpp"
#include "coordinator/tls/client_certificates.hpp"
#include "platform/http/http_client.hpp"
#include "protocol/timestamp.hpp"
#include "tests/e2e/fleet.hpp"
#include "tests/support/coordinator_process.hpp"

namespace fabu::e2e {
namespace {

using fabu::testing::LastLine;
using fabu::testing::ReadFile;
using fabu::testing::RunCommand;
using fabu::testing::WriteFile;

struct Answer {
  long status = 0;
  std::string body;
};

std::int64_t NowSeconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

// A PEM CSR for the private key in `key_pem` (or a new P-256 key), CN = `cn`.
std::string MakeCsr(const std::string& cn, const std::string& key_pem = "") {
  EVP_PKEY* key = nullptr;
  if (key_pem.empty()) {
    key = EVP_EC_gen("P-256");
  } else {
    BIO* in = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
    key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
    BIO_free(in);
  }
  X509_REQ* req = X509_REQ_new();
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req, key);
  X509_REQ_sign(req, key, EVP_sha256());
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(out, req);
  char* data = nullptr;
  const long size = BIO_get_mem_data(out, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(out);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  return pem;
}

// The private key part of an agent's client.pem (certificate, then key).
std::string KeyPart(const std::string& identity) {
  const std::size_t at = identity.find("-----BEGIN PRIVATE KEY-----");
  return at == std::string::npos ? std::string() : identity.substr(at);
}

class MutualTlsTest : public Fleet {
 protected:
  // One agent request as whoever holds `identity` (a client.pem: "" for
  // none) and `credential`.
  Answer Call(const fs::path& identity, const std::string& credential,
              const std::string& method = "GET",
              const std::string& path = "/api/v1/agent/assignment?wait=0",
              const std::string& body = "") {
    platform::HttpClientOptions options;
    options.ca_file = Ca().string();
    if (!identity.empty()) {
      options.client_cert_file = identity.string();
      options.client_key_file = identity.string();
    }
    auto http = platform::HttpClient::Create(options);
    EXPECT_TRUE(http) << http.error().message();
    if (!http) return {};
    platform::HttpRequest request;
    request.method = method;
    request.url = Url() + path;
    request.bearer = credential;
    request.body = body;
    if (!body.empty()) request.headers = {"Content-Type: application/json"};
    request.timeout = std::chrono::seconds(30);
    auto response = http->Send(request);
    EXPECT_TRUE(response) << response.error().message();
    if (!response) return {};
    return {response->status, response->body};
  }

  fs::path Identity(const Agent& agent) const { return agent.data() / "client.pem"; }

  json HostRecord(const std::string& name) {
    for (const json& host : HostsList()) {
      if (host.value("name", "") == name) return host;
    }
    return json();
  }

  // Restarts the coordinator on its port with `changes` in its config.json.
  void Reconfigure(const json& changes) {
    const int port = Port();
    ASSERT_EQ(StopCoordinator(), 0);
    const fs::path path = CoordinatorDir() / "config.json";
    json config = json::parse(ReadFile(path));
    for (const auto& [key, value] : changes.items()) config[key] = value;
    WriteFile(path, config.dump(2));
    ASSERT_NO_FATAL_FAILURE(StartCoordinator(port));
  }

  std::string EnrollToken() {
    auto token = As(admin_, {"enroll-token", "create", "--uses", "5"});
    EXPECT_EQ(token.exit_code, 0) << token.err;
    return LastLine(token.out);
  }

  Answer EnrollRaw(const std::string& token, const std::string& name, const std::string& csr) {
    json request = {{"token", token},
                    {"name", name},
                    {"labels", json::object()},
                    {"inventory",
                     {{"hostname", name},
                      {"os", "linux"},
                      {"kernel", "6.1"},
                      {"arch", "x86_64"},
                      {"cpus", 1},
                      {"memory_bytes", 1},
                      {"agent_version", "0.1.0"},
                      {"apps", json::array()}}}};
    if (!csr.empty()) request["csr"] = csr;
    return Call("", "", "POST", "/api/v1/agent/enroll", request.dump());
  }
};

TEST_F(MutualTlsTest, AnAgentEnrollsWithItsOwnKeyAndDeploysWithItsCertificate) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(2));
  for (const Agent& agent : agents_) {
    // The key stayed on the host: 0600, with the certificate, nothing pending.
    struct stat st {};
    ASSERT_EQ(::stat(Identity(agent).c_str(), &st), 0) << agent.name;
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_FALSE(fs::exists(agent.data() / "client.key.next"));
    auto described = coordinator::DescribeCertificate(ReadFile(Identity(agent)));
    ASSERT_TRUE(described) << described.error().message();
    EXPECT_EQ(described->common_name, agent.name);
    // What the coordinator recorded is this certificate.
    const json host = HostRecord(agent.name);
    ASSERT_TRUE(host["certificate"].is_object()) << host.dump();
    EXPECT_EQ(host["certificate"]["serial"], described->serial);
    EXPECT_EQ(host["certificate"]["not_after"], protocol::FormatRfc3339Utc(described->not_after));
    // 30 days by default.
    EXPECT_NEAR(static_cast<double>(described->not_after - NowSeconds()), 30.0 * 86400, 120.0);
  }
  auto table = As(viewer_, {"hosts", "list"});
  EXPECT_TRUE(Contains(table.out, "CERTIFICATE UNTIL")) << table.out;
  ASSERT_NO_FATAL_FAILURE(Deploy(BuildAndUpload(kV1)));
  for (const Agent& agent : agents_) EXPECT_EQ(Current(agent).filename(), kV1) << agent.name;
}

TEST_F(MutualTlsTest, OnlyTheHostsOwnCertificateWithItsOwnCredentialActsAsTheHost) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(2, "env=production", false));
  const Agent& web1 = agents_[0];
  const Agent& web2 = agents_[1];
  EXPECT_EQ(Call(Identity(web1), Credential(web1)).status, 200);

  Answer none = Call("", Credential(web1));
  EXPECT_EQ(none.status, 401);
  EXPECT_TRUE(Contains(none.body, "host web-1: no client certificate was sent")) << none.body;

  Answer other_cert = Call(Identity(web2), Credential(web1));
  EXPECT_EQ(other_cert.status, 401);
  EXPECT_TRUE(Contains(other_cert.body, "host web-1: the client certificate is for \\\"web-2\\\""))
      << other_cert.body;

  Answer other_credential = Call(Identity(web1), Credential(web2));
  EXPECT_EQ(other_credential.status, 401);
  EXPECT_TRUE(Contains(other_credential.body, "host web-2: the client certificate is for"))
      << other_credential.body;

  // A copy of the data directory without the key cannot act as the host:
  // the agent is refused and stops (77: not restarted).
  const fs::path copy = dir_ / "web-1-copy";
  fs::create_directories(copy);
  fs::copy(web1.data(), copy / "data", fs::copy_options::recursive);
  fs::remove(copy / "data" / "client.pem");
  Process agent({AgentBinary(), "run", "--data", (copy / "data").string()}, copy / "agent.out",
                copy / "agent.log");
  ASSERT_TRUE(agent.started());
  ASSERT_TRUE(WaitFor([&] { return !agent.Running(); }, std::chrono::seconds(30)))
      << ReadFile(copy / "agent.log");
  EXPECT_EQ(agent.Terminate(), 77);
  EXPECT_TRUE(Contains(ReadFile(copy / "agent.log"), "no client certificate was sent"))
      << ReadFile(copy / "agent.log");
  // The host itself is not harmed by it.
  EXPECT_EQ(Call(Identity(web1), Credential(web1)).status, 200);
}

TEST_F(MutualTlsTest, ARevokedHostsCertificateIsRefusedAtItsNextRequest) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(1));
  Agent& web1 = agents_[0];
  ASSERT_TRUE(WaitFor([&] { return Contains(ReadFile(web1.log()), "fabu-agent"); }));
  auto revoked = As(admin_, {"host", "revoke", "web-1", "--reason", "disk image leaked"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  // Its long poll is answered 401 and it stops.
  ASSERT_TRUE(WaitFor([&] { return !web1.process->Running(); }, std::chrono::seconds(30)));
  EXPECT_EQ(web1.process->Terminate(), 77);
  Answer answer = Call(Identity(web1), Credential(web1));
  EXPECT_EQ(answer.status, 401);
  EXPECT_TRUE(Contains(answer.body, "host web-1 was revoked")) << answer.body;
}

TEST_F(MutualTlsTest, AnExpiredCertificateIsRefusedNamingItsExpiry) {
  ASSERT_NO_FATAL_FAILURE(AddAgents(1, "env=production", false));
  const Agent& web1 = agents_[0];
  // The host's own key, a certificate of the coordinator's CA that ended an
  // hour ago (the test signs it with the CA's key: no waiting).
  const std::string key = KeyPart(ReadFile(Identity(web1)));
  ASSERT_FALSE(key.empty());
  auto ca = coordinator::ClientCertificateAuthority::Load(coordinator::DataDir{CoordinatorDir()});
  ASSERT_TRUE(ca) << ca.error().message();
  auto expired =
      ca->SignValid(MakeCsr("web-1", key), "web-1", NowSeconds() - 7200, NowSeconds() - 3600);
  ASSERT_TRUE(expired) << expired.error().message();
  const fs::path file = dir_ / "expired.pem";
  WriteFile(file, expired->pem + key);
  Answer answer = Call(file, Credential(web1));
  EXPECT_EQ(answer.status, 401);
  EXPECT_TRUE(Contains(answer.body, "host web-1: the client certificate (serial " +
                                        expired->serial + ") expired at"))
      << answer.body;
  // One from another CA is refused too, naming the CA.
  fabu::testing::TempDir other;
  ASSERT_TRUE(coordinator::CreateCertificates(coordinator::DataDir{other.path()}, {}));
  auto other_ca = coordinator::ClientCertificateAuthority::Load(coordinator::DataDir{other.path()});
  ASSERT_TRUE(other_ca);
  auto foreign = other_ca->Sign(MakeCsr("web-1", key), "web-1", NowSeconds(), 3600);
  ASSERT_TRUE(foreign);
  WriteFile(file, foreign->pem + key);
  answer = Call(file, Credential(web1));
  EXPECT_EQ(answer.status, 401);
  EXPECT_TRUE(Contains(answer.body, "not issued by this coordinator's CA")) << answer.body;
}

TEST_F(MutualTlsTest, ARunningAgentRenewsItsCertificateBeforeItExpiresAndKeepsWorking) {
  // Certificates of 30 s: renewal is due after 20 s.
  ASSERT_NO_FATAL_FAILURE(Reconfigure({{"agent_cert_lifetime_seconds", 30}}));
  ASSERT_NO_FATAL_FAILURE(AddAgents(1));
  Agent& web1 = agents_[0];
  const fs::path first = dir_ / "first.pem";
  fs::copy_file(Identity(web1), first);
  auto original = coordinator::DescribeCertificate(ReadFile(first));
  ASSERT_TRUE(original);
  std::string renewed_serial;
  ASSERT_TRUE(WaitFor(
      [&] {
        const json host = HostRecord("web-1");
        if (!host["certificate"].is_object()) return false;
        renewed_serial = host["certificate"].value("serial", "");
        return renewed_serial != original->serial;
      },
      std::chrono::seconds(45)))
      << ReadFile(web1.log());
  EXPECT_LT(NowSeconds(), original->not_after) << "renewed only after the old one expired";
  EXPECT_TRUE(Contains(ReadFile(web1.log()), "client certificate renewed: serial " +
                                                 renewed_serial + " (was " + original->serial))
      << ReadFile(web1.log());
  // Past the first certificate's end, the agent still works (with its second
  // or a later one), and the first is refused as expired.
  ASSERT_TRUE(
      WaitFor([&] { return NowSeconds() > original->not_after + 1; }, std::chrono::seconds(30)));
  Answer old = Call(first, Credential(web1));
  EXPECT_EQ(old.status, 401);
  EXPECT_TRUE(Contains(old.body, "expired at")) << old.body;
  ASSERT_NO_FATAL_FAILURE(Deploy(BuildAndUpload(kV1)));
  EXPECT_TRUE(web1.process->Running());
  EXPECT_FALSE(Contains(ReadFile(web1.log()), "HTTP 401")) << ReadFile(web1.log());
}

TEST_F(MutualTlsTest, ABadCsrIsRefusedAtEnrollmentAndRequiredRefusesHostsWithout) {
  const std::string token = EnrollToken();
  Answer garbage = EnrollRaw(token, "web-7", "-----BEGIN CERTIFICATE REQUEST-----\nxyz\n");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_TRUE(Contains(garbage.body, "csr: not a PEM certificate signing request")) << garbage.body;
  Answer other_name = EnrollRaw(token, "web-7", MakeCsr("web-8"));
  EXPECT_EQ(other_name.status, 400);
  EXPECT_TRUE(
      Contains(other_name.body, "its CN is \\\"web-8\\\", not the host's name \\\"web-7\\\""))
      << other_name.body;
  auto audit = As(admin_, {"audit", "list", "--json"});
  EXPECT_TRUE(Contains(audit.out, "host.enroll-refused"));

  // Without a CSR (an agent of before, a load generator): the credential
  // alone, and the host says it has no certificate.
  Answer legacy = EnrollRaw(token, "old-1", "");
  ASSERT_EQ(legacy.status, 201) << legacy.body;
  const json enrolled = json::parse(legacy.body);
  EXPECT_FALSE(enrolled.contains("certificate"));
  const std::string credential = enrolled["credential"];
  EXPECT_EQ(Call("", credential).status, 200);
  EXPECT_TRUE(HostRecord("old-1")["certificate"].is_null());

  // "required": no enrollment without a CSR, no request from a host without one.
  ASSERT_NO_FATAL_FAILURE(Reconfigure({{"agent_certificates", "required"}}));
  Answer refused = EnrollRaw(token, "old-2", "");
  EXPECT_EQ(refused.status, 400);
  EXPECT_TRUE(Contains(refused.body, "requires agents to enroll with a client certificate"))
      << refused.body;
  Answer old_host = Call("", credential);
  EXPECT_EQ(old_host.status, 401);
  EXPECT_TRUE(Contains(old_host.body, "agent_certificates: required")) << old_host.body;
  // An agent of now enrolls and works.
  ASSERT_NO_FATAL_FAILURE(AddAgents(1, "env=production", false));
  EXPECT_EQ(Call(Identity(agents_[0]), Credential(agents_[0])).status, 200);
}

}  // namespace
}  // namespace fabu::e2e
