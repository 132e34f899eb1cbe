#include "coordinator/common/secret_box.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "packaging/keys.hpp"
#include "platform/fs/files.hpp"

namespace fabu::coordinator {
namespace {

constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

std::unexpected<Error> CryptoError(std::string_view what) {
  return Fail(ErrorCode::kInternal, fmt::format("sealing secrets: {} failed (OpenSSL)", what));
}

}  // namespace

SecretBox SecretBox::FromKey(const std::array<std::uint8_t, kKeyBytes>& key) {
  SecretBox box;
  box.key_ = key;
  return box;
}

Result<SecretBox> SecretBox::Load(const std::filesystem::path& key_file) {
  const int fd = ::open(key_file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return Fail(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                fmt::format("{}: {}", key_file.string(), std::strerror(errno)));
  }
  struct stat st {};
  SecretBox box;
  ssize_t n = -1;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == static_cast<off_t>(kKeyBytes)) {
    n = ::read(fd, box.key_.data(), box.key_.size());
  }
  ::close(fd);
  if (n != static_cast<ssize_t>(kKeyBytes)) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("{}: not a secret key (a regular file of {} random bytes)",
                            key_file.string(), kKeyBytes));
  }
  return box;
}

Result<SecretBox> SecretBox::Create(const std::filesystem::path& key_file) {
  SecretBox box;
  if (RAND_bytes(box.key_.data(), static_cast<int>(box.key_.size())) != 1) {
    return CryptoError("RAND_bytes");
  }
  const std::string_view key(reinterpret_cast<const char*>(box.key_.data()), box.key_.size());
  if (auto written = platform::WriteNewFileDurably(key_file, key, 0600); !written) {
    return std::unexpected(written.error());
  }
  return box;
}

Result<std::string> SecretBox::Seal(std::string_view plain, std::string_view context) const {
  if (plain.empty()) return std::string();
  std::vector<std::uint8_t> out(kNonceBytes + plain.size() + kTagBytes);
  if (RAND_bytes(out.data(), static_cast<int>(kNonceBytes)) != 1) return CryptoError("RAND_bytes");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), out.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(context.data()),
                        static_cast<int>(context.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data() + kNonceBytes, &len,
                        reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + kNonceBytes + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          out.data() + kNonceBytes + plain.size()) != 1) {
    return CryptoError("AES-256-GCM encryption");
  }
  return std::string(kPrefix) + packaging::ToHex(out);
}

Result<std::string> SecretBox::Open(std::string_view sealed, std::string_view context) const {
  std::vector<std::uint8_t> in;
  if (IsSealed(sealed)) {
    if (auto bytes = packaging::FromHex(sealed.substr(kPrefix.size()))) in = std::move(*bytes);
  }
  if (in.size() < kNonceBytes + kTagBytes) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{}: the stored secret is not sealed ({}...)", context, kPrefix));
  }
  const std::size_t size = in.size() - kNonceBytes - kTagBytes;
  std::string plain(size, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  std::vector<std::uint8_t> tag(in.end() - kTagBytes, in.end());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes),
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), in.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(context.data()),
                        static_cast<int>(context.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                        in.data() + kNonceBytes, static_cast<int>(size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                          tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &len) !=
          1) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("{}: the sealed secret does not open with this coordinator's "
                            "secret.key (another key, or altered)",
                            context));
  }
  return plain;
}

}  // namespace fabu::coordinator
