// The byte sources of a package read (package_reader.cpp): the package file
// under the outer tar reader, and the payload member under the inner one.
// Each hashes and counts what libarchive pulls through it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "packaging/growing_file.hpp"
#include "packaging/platform/libarchive.hpp"
#include "packaging/sha256.hpp"
#include "protocol/error.hpp"

namespace fabu::packaging::reader {

inline constexpr std::size_t kReadChunk = 256 << 10;

// The package file, hashed as libarchive pulls it. A growing file (a
// download still running) is read up to its end as its writer declares it.
struct FileSource {
  int fd = -1;
  bool owns_fd = true;  // false: VerifyOptions::fd, the caller's
  bool hashing = true;  // VerifyOptions::file_digest
  Sha256 hash;
  std::uint64_t size = 0;
  std::vector<char> buffer = std::vector<char>(kReadChunk);
  GrowingFile* growing = nullptr;  // VerifyOptions::growing
  std::string growing_error;       // why a growing file ended early

  // The next bytes into `buffer`, hashed and counted: their number, 0 at the
  // end of the file, -1 on an error (errno, or `growing_error`).
  ssize_t Next();
  // Reads and hashes whatever libarchive did not, so the digest covers the file.
  Result<void> Drain();
};

// libarchive's read callback over a FileSource (`client`).
la_ssize_t FileRead(archive*, void* client, const void** out);

// The payload member, pulled from the outer tar, hashed and bounded by the
// size the manifest declares.
struct PayloadSource {
  archive* outer = nullptr;
  Sha256 hash;
  std::uint64_t size = 0;
  std::uint64_t limit = 0;
  bool over_limit = false;
  std::string error;

  // Reads the rest of the payload member (what decompression did not need).
  Result<void> Drain();
};

// libarchive's read callback over a PayloadSource (`client`).
la_ssize_t PayloadRead(archive*, void* client, const void** out);

}  // namespace fabu::packaging::reader
