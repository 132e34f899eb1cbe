#include "agent/net/package_download.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "agent/common/durable_files.hpp"

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

Result<DownloadReport> DownloadPackage(HttpsClient& client, const DownloadRequest& r) {
  std::error_code ec;
  if (fs::exists(r.destination, ec)) {
    // Completed by an earlier run (the agent stopped before installing it).
    if (SizeOrZero(r.destination) == r.size) return DownloadReport{r.size, 0};
    fs::remove(r.destination, ec);
  }
  if (auto ok = MakeDirectories(r.part.parent_path()); !ok) return std::unexpected(ok.error());

  DownloadReport report;
  std::uint64_t have = SizeOrZero(r.part);
  if (have > r.size) {
    fs::remove(r.part, ec);  // not the file we are after
    have = 0;
  }
  report.resumed_from = have;

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
    HttpsClient::FetchHandler handler;
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
      have = 0;
      if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) != 0) {
        refusal = Error(ErrorCode::kIo, fmt::format("cannot truncate {}", r.part.string()));
        return false;
      }
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
      have += bytes.size();
      report.fetched += bytes.size();
      return true;
    };
    auto response = client.Fetch(r.url, r.bearer, have, handler);
    if (refusal) {
      if (refusal->code() == ErrorCode::kTooLarge || refusal->code() == ErrorCode::kIntegrity) {
        fs::remove(r.part, ec);
      }
      return std::unexpected(*refusal);
    }
    // Keep what arrived for the next attempt, durably enough to resume from.
    ::fdatasync(fd.get());
    if (!response) return std::unexpected(response.error());
    if (response->status != 200 && response->status != 206) {
      // 416: the server does not have the bytes we asked from: start over next time.
      if (response->status == 416) fs::remove(r.part, ec);
      return std::unexpected(StatusError(fmt::format("GET {}", r.url), *response));
    }
    if (have < r.size) {
      return Fail(ErrorCode::kUnavailable,
                  fmt::format("GET {}: the transfer ended after {} of {} bytes (it will resume)",
                              r.url, have, r.size));
    }
    if (::fsync(fd.get()) != 0) {
      return Fail(ErrorCode::kIo, fmt::format("cannot sync {}", r.part.string()));
    }
  }
  if (::rename(r.part.c_str(), r.destination.c_str()) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("cannot rename {} to {}: {}", r.part.string(),
                                            r.destination.string(), std::strerror(errno)));
  }
  if (auto ok = SyncDirectory(r.destination.parent_path()); !ok) {
    return std::unexpected(ok.error());
  }
  return report;
}

}  // namespace fabu::agent
