#include "packaging/reader/sources.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fabu::packaging::reader {

using platform::ArchiveErrorText;

ssize_t FileSource::Next() {
  bool waited = false;
  while (true) {
    // pread from our own offset: a caller's descriptor may be read again.
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(size));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0 && growing != nullptr) {
      // Caught up with the writer: wait for more, or for the end.
      if (waited) {
        // The writer said there is more, yet this file has no more: it is
        // no longer the file being written (a download that started over).
        growing_error = "the file was replaced while it was being read";
        return -1;
      }
      auto more = growing->WaitBeyond(size);
      if (!more) {
        growing_error = more.error().message();
        return -1;
      }
      if (*more) {
        waited = true;
        continue;
      }
    }
    if (hashing) hash.Update(buffer.data(), static_cast<std::size_t>(n));
    size += static_cast<std::uint64_t>(n);
    return n;
  }
}

Result<void> FileSource::Drain() {
  if (!hashing && growing == nullptr) {
    struct stat st {};
    if (::fstat(fd, &st) == 0) size = static_cast<std::uint64_t>(st.st_size);
    return {};
  }
  while (true) {
    const ssize_t n = Next();
    if (n < 0 && !growing_error.empty()) return Fail(ErrorCode::kUnavailable, growing_error);
    if (n < 0) return Fail(ErrorCode::kIo, std::string("read: ") + std::strerror(errno));
    if (n == 0) return {};
  }
}

la_ssize_t FileRead(archive*, void* client, const void** out) {
  auto* src = static_cast<FileSource*>(client);
  const ssize_t n = src->Next();
  *out = src->buffer.data();
  return n;
}

Result<void> PayloadSource::Drain() {
  const void* block = nullptr;
  std::size_t len = 0;
  la_int64_t offset = 0;
  while (true) {
    int r = archive_read_data_block(outer, &block, &len, &offset);
    if (r == ARCHIVE_EOF) return {};
    if (r != ARCHIVE_OK) {
      return Fail(ErrorCode::kIntegrity,
                  "package is truncated or corrupt: " + ArchiveErrorText(outer));
    }
    hash.Update(block, len);
    size += len;
    if (size > limit) {
      over_limit = true;
      return {};
    }
  }
}

la_ssize_t PayloadRead(archive*, void* client, const void** out) {
  auto* src = static_cast<PayloadSource*>(client);
  const void* block = nullptr;
  std::size_t len = 0;
  la_int64_t offset = 0;
  int r = archive_read_data_block(src->outer, &block, &len, &offset);
  if (r == ARCHIVE_EOF) return 0;
  if (r != ARCHIVE_OK) {
    src->error = ArchiveErrorText(src->outer);
    return -1;
  }
  src->hash.Update(block, len);
  src->size += len;
  if (src->size > src->limit) {
    src->over_limit = true;
    return -1;
  }
  *out = block;
  return static_cast<la_ssize_t>(len);
}

}  // namespace fabu::packaging::reader
