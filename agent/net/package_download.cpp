#include "agent/net/package_download.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "packaging/sha256.hpp"
#include "platform/fs/files.hpp"

namespace fabu::agent {

namespace fs = std::filesystem;

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::uint64_t SizeOrZero(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// Hashes the first `size` bytes of `path` (a partial file being resumed).
Result<void> HashPrefix(const fs::path& path, std::uint64_t size, packaging::Sha256& hash) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return Fail(ErrorCode::kIo,
                fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  }
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buffer(256 << 10);
  std::uint64_t left = size;
  while (left > 0) {
    const ssize_t n = ::read(fd.get(), buffer.data(), std::min<std::uint64_t>(left, buffer.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Fail(ErrorCode::kIo,
                  fmt::format("cannot read {}: {}", path.string(),
                              n == 0 ? "shorter than expected" : std::strerror(errno)));
    }
    hash.Update(buffer.data(), static_cast<std::size_t>(n));
    left -= static_cast<std::uint64_t>(n);
  }
  return {};
}

bool WriteAll(int fd, std::span<const char> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

namespace {

Result<DownloadReport> Download(platform::HttpClient& client, const DownloadRequest& r) {
  std::error_code ec;
  if (fs::exists(r.destination, ec)) {
    // Completed by an earlier run (the agent stopped before installing it).
    if (SizeOrZero(r.destination) == r.size) {
      auto sha256 = packaging::Sha256::OfFile(r.destination);
      if (!sha256) return std::unexpected(sha256.error());
      if (r.expected_sha256.empty() || *sha256 == r.expected_sha256) {
        return DownloadReport{r.size, 0, std::move(*sha256)};
      }
    }
    fs::remove(r.destination, ec);
  }
  if (auto ok = platform::MakeDirectories(r.part.parent_path()); !ok)
    return std::unexpected(ok.error());

  DownloadReport report;
  std::uint64_t have = SizeOrZero(r.part);
  if (have > r.size) {
    fs::remove(r.part, ec);  // not the file we are after
    have = 0;
  }
  report.resumed_from = have;
  if (r.progress != nullptr) r.progress->Grew(have);
  packaging::Sha256 hash;
  if (have > 0) {
    if (auto ok = HashPrefix(r.part, have, hash); !ok) return std::unexpected(ok.error());
  }

  if (have < r.size) {
    Fd fd(::open(r.part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) {
      return Fail(ErrorCode::kIo,
                  fmt::format("cannot open {}: {}", r.part.string(), std::strerror(errno)));
    }
    if (::lseek(fd.get(), static_cast<off_t>(have), SEEK_SET) < 0) {
      return Fail(ErrorCode::kIo, fmt::format("cannot seek in {}", r.part.string()));
    }
    std::optional<Error> refusal;
    platform::HttpClient::FetchHandler handler;
    handler.on_start = [&](long status, std::optional<std::uint64_t> range_start) {
      if (status == 206) {
        if (range_start != have) {
          refusal =
              Error(ErrorCode::kIntegrity,
                    fmt::format("GET {}: asked for bytes from {}, the server sent a range "
                                "starting at {}",
                                r.url, have, range_start ? std::to_string(*range_start) : "?"));
          return false;
        }
        return true;
      }
      // 200: the server sends the whole file; start over.
      if (have > 0) report.resumed_from = 0;
      if (have > 0) hash = packaging::Sha256();
      have = 0;
      if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) != 0) {
        refusal = Error(ErrorCode::kIo, fmt::format("cannot truncate {}", r.part.string()));
        return false;
      }
      if (r.progress != nullptr) r.progress->Grew(0);
      return true;
    };
    handler.on_data = [&](std::span<const char> bytes) {
      if (bytes.size() > r.size - have) {
        refusal = Error(ErrorCode::kTooLarge,
                        fmt::format("GET {}: the server sent more than the {} bytes the "
                                    "assignment announced",
                                    r.url, r.size));
        return false;
      }
      if (!WriteAll(fd.get(), bytes)) {
        refusal = Error(ErrorCode::kIo,
                        fmt::format("cannot write {}: {}", r.part.string(), std::strerror(errno)));
        return false;
      }
      hash.Update(bytes.data(), bytes.size());
      have += bytes.size();
      report.fetched += bytes.size();
      if (r.progress != nullptr) r.progress->Grew(have);
      return true;
    };
    auto response = client.Fetch(r.url, r.bearer, have, handler);
    if (refusal) {
      if (refusal->code() == ErrorCode::kTooLarge || refusal->code() == ErrorCode::kIntegrity) {
        fs::remove(r.part, ec);
      }
      return std::unexpected(*refusal);
    }
    // What arrived stays for the next attempt (the page cache keeps it across
    // an agent restart; a power cut that tears it is caught by the digest).
    if (!response) return std::unexpected(response.error());
    if (response->status != 200 && response->status != 206) {
      // 416: the server does not have the bytes we asked from: start over next time.
      if (response->status == 416) fs::remove(r.part, ec);
      return std::unexpected(platform::StatusError(fmt::format("GET {}", r.url), *response));
    }
    if (have < r.size) {
      return Fail(ErrorCode::kUnavailable,
                  fmt::format("GET {}: the transfer ended after {} of {} bytes (it will resume)",
                              r.url, have, r.size));
    }
  }
  report.sha256 = hash.FinishHex();
  if (!r.expected_sha256.empty() && report.sha256 != r.expected_sha256) {
    fs::remove(r.part, ec);
    return Fail(ErrorCode::kIntegrity,
                fmt::format("GET {}: the {} bytes received have SHA-256 {}, not the package id "
                            "{}; the partial file was removed (the next attempt starts over)",
                            r.url, r.size, report.sha256, r.expected_sha256));
  }
  if (platform::CurrentFileSystem().Rename(r.part.c_str(), r.destination.c_str()) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot rename {} to {}: {}", r.part.string(),
                                            r.destination.string(), std::strerror(errno)));
  }
  return report;
}

}  // namespace

Result<DownloadReport> DownloadPackage(platform::HttpClient& client, const DownloadRequest& r) {
  auto report = Download(client, r);
  if (r.progress != nullptr) {
    if (report) {
      r.progress->Complete();
    } else {
      r.progress->Abandon(report.error());
    }
  }
  return report;
}

}  // namespace fabu::agent
