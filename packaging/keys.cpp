#include "packaging/keys.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "fmt/format.h"
#include "platform/fs/files.hpp"

namespace fabu::packaging {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// The last OpenSSL error as text, clearing the queue.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

std::string KeyIdOf(const RawPublicKey& raw) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(raw.data(), raw.size(), digest, &len, EVP_sha256(), nullptr);
  return ToHex(std::span<const std::uint8_t>(digest, 8));
}

Result<std::string> ReadSmallFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > 64 * 1024) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: too large to be a PEM key", path.string()));
  }
  return text;
}

Result<RawPublicKey> RawOf(EVP_PKEY* pkey) {
  RawPublicKey raw{};
  std::size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(pkey, raw.data(), &len) != 1 || len != raw.size()) {
    return Fail(ErrorCode::kInternal, "cannot read raw Ed25519 public key: " + OpenSslError());
  }
  return raw;
}

// Writes `data` to a new file with `mode`, refusing to overwrite, and fsyncs it.
Result<void> WriteNewFile(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  auto written = fabu::platform::WriteNewFileDurably(path, data, mode);
  if (!written && written.error().code() == ErrorCode::kAlreadyExists) {
    return Fail(ErrorCode::kAlreadyExists,
                fmt::format("{} already exists; refusing to overwrite a key", path.string()));
  }
  return written;
}

}  // namespace

std::string ToHex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = digit(hex[2 * i]);
    const int lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return out;
}

// --- PublicKey ---------------------------------------------------------------

PublicKey PublicKey::FromRaw(const RawPublicKey& raw) {
  PublicKey key;
  key.raw_ = raw;
  key.key_id_ = KeyIdOf(raw);
  return key;
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalidArgument,
                "not a PEM public key (expected \"-----BEGIN PUBLIC KEY-----\")");
  }
  if (EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) {
    return Fail(ErrorCode::kInvalidArgument, "public key is not an Ed25519 key");
  }
  auto raw = RawOf(pkey.get());
  if (!raw) return std::unexpected(raw.error());
  return FromRaw(*raw);
}

Result<PublicKey> PublicKey::FromPemFile(const std::filesystem::path& path) {
  auto text = ReadSmallFile(path);
  if (!text) return std::unexpected(text.error());
  auto key = FromPem(*text);
  if (!key) return std::unexpected(key.error().WithContext(path.string()));
  return key;
}

std::string PublicKey::ToPem() const {
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw_.data(), raw_.size()));
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), pkey.get());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

bool PublicKey::Verify(std::span<const char> message, const Signature& signature) const {
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw_.data(), raw_.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  int ok = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return ok == 1;
}

// --- SigningKey --------------------------------------------------------------

struct SigningKey::Impl {
  PkeyPtr pkey;
};

SigningKey::SigningKey(std::unique_ptr<Impl> impl, PublicKey public_key)
    : impl_(std::move(impl)), public_key_(std::move(public_key)) {}
SigningKey::SigningKey(SigningKey&&) noexcept = default;
SigningKey& SigningKey::operator=(SigningKey&&) noexcept = default;
SigningKey::~SigningKey() = default;

Result<SigningKey> SigningKey::Generate() {
  PkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!pkey) return Fail(ErrorCode::kInternal, "cannot generate Ed25519 key: " + OpenSslError());
  auto raw = RawOf(pkey.get());
  if (!raw) return std::unexpected(raw.error());
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  return SigningKey(std::move(impl), PublicKey::FromRaw(*raw));
}

Result<SigningKey> SigningKey::FromPemFile(const std::filesystem::path& path) {
  auto text = ReadSmallFile(path);
  if (!text) return std::unexpected(text.error());
  BioPtr bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: not a PEM private key (expected PKCS#8 \"-----BEGIN PRIVATE "
                            "KEY-----\", as written by `fabu keygen`)",
                            path.string()));
  }
  if (EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: private key is not an Ed25519 key", path.string()));
  }
  auto raw = RawOf(pkey.get());
  if (!raw) return std::unexpected(raw.error());
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  return SigningKey(std::move(impl), PublicKey::FromRaw(*raw));
}

Result<Signature> SigningKey::Sign(std::span<const char> message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  Signature sig{};
  std::size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != sig.size()) {
    return Fail(ErrorCode::kInternal, "Ed25519 signing failed: " + OpenSslError());
  }
  return sig;
}

Result<void> SigningKey::WriteFiles(const std::filesystem::path& prefix) const {
  const std::filesystem::path key_path = prefix.string() + ".key";
  const std::filesystem::path pub_path = prefix.string() + ".pub";
  if (std::filesystem::exists(pub_path)) {
    return Fail(ErrorCode::kAlreadyExists,
                fmt::format("{} already exists; refusing to overwrite a key", pub_path.string()));
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    return Fail(ErrorCode::kInternal, "cannot encode private key: " + OpenSslError());
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  std::string private_pem(data, static_cast<std::size_t>(len));
  OPENSSL_cleanse(data, static_cast<std::size_t>(len));

  auto written = WriteNewFile(key_path, private_pem, 0600);
  OPENSSL_cleanse(private_pem.data(), private_pem.size());
  if (!written) return written;
  written = WriteNewFile(pub_path, public_key_.ToPem(), 0644);
  if (!written) {
    std::filesystem::remove(key_path);
    return written;
  }
  return {};
}

// --- TrustStore --------------------------------------------------------------

void TrustStore::Add(const PublicKey& key) {
  if (Find(key.key_id()) == nullptr) keys_.push_back(key);
}

Result<void> TrustStore::AddFile(const std::filesystem::path& pem_path) {
  auto key = PublicKey::FromPemFile(pem_path);
  if (!key) return std::unexpected(key.error());
  Add(*key);
  return {};
}

const PublicKey* TrustStore::Find(std::string_view key_id) const {
  for (const auto& key : keys_) {
    if (key.key_id() == key_id) return &key;
  }
  return nullptr;
}

}  // namespace fabu::packaging
