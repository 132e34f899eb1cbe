#include "packaging/sha256.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "fmt/format.h"
#include "packaging/keys.hpp"

namespace fabu::packaging {

struct Sha256::Impl {
  struct Deleter {
    void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  };
  std::unique_ptr<EVP_MD_CTX, Deleter> ctx{EVP_MD_CTX_new()};
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr);
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(const void* data, std::size_t size) {
  EVP_DigestUpdate(impl_->ctx.get(), data, size);
}

Sha256::Digest Sha256::Finish() {
  Digest digest{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx.get(), digest.data(), &len);
  return digest;
}

std::string Sha256::FinishHex() {
  const Digest digest = Finish();
  return ToHex(std::span<const std::uint8_t>(digest.data(), digest.size()));
}

std::string Sha256::OfString(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.FinishHex();
}

Result<std::string> Sha256::OfFile(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  }
  Sha256 h;
  std::vector<char> buffer(1 << 20);
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Fail(ErrorCode::kIo,
                  fmt::format("cannot read {}: {}", path.string(), std::strerror(err)));
    }
    if (n == 0) break;
    h.Update(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return h.FinishHex();
}

}  // namespace fabu::packaging
