// Downloading a package file with resume.
//
// The bytes go to `part` (DIR/downloads/<package_id>.part); a later call —
// also after the agent was restarted — asks only for what is missing
// (Range: bytes=<size of part>-). A server that ignores the Range (200) makes
// the download start over; a 206 starting elsewhere is refused. The file may
// never grow beyond the size the assignment announced: a server sending more
// is cut off, the partial file is removed (its content is suspect) and the
// error is kTooLarge.
//
// The bytes are hashed (SHA-256) as they arrive, so the package id is known
// when the last byte is in, without reading the file again; a resumed
// download hashes what is already on disk first (one read of the part, only
// on resume). When `size` bytes are there, the digest must equal
// `expected_sha256` (when given): a mismatch removes the partial file (the
// next attempt starts over) and is kIntegrity. The file is then renamed to
// `destination` (DIR/downloads/<package_id>.fabu). It is not fsynced: a file
// torn by a power cut cannot pass the digest, so durability buys nothing
// here that the digest does not already give, and the extraction that
// follows syncs what it installs.
//
// Nothing here trusts the bytes for more than the digest: the deployment
// engine verifies the signature and re-derives the digest while it extracts.
// Errors: kUnavailable when the transfer broke (call again to resume),
// kTooLarge, kIntegrity, and platform::StatusError codes for HTTP refusals (403, 404,
// ...), kIo for the local disk. Not thread-safe (one download per file at a
// time).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "packaging/growing_file.hpp"
#include "platform/http/http_client.hpp"
#include "protocol/error.hpp"

namespace fabu::agent {

struct DownloadRequest {
  std::string url;
  std::string bearer;  // credential, or "" for a mirror that needs none
  std::filesystem::path part;
  std::filesystem::path destination;
  std::uint64_t size = 0;       // exact size announced by the assignment
  std::string expected_sha256;  // the package id; "" to skip the check
  // Told of every byte written to `part`, then whether the download ended
  // whole (after the digest check) or not: lets a reader follow the part
  // file while it is written (an install that extracts as it downloads).
  // `part` keeps its inode when renamed to `destination`, so a reader's open
  // descriptor stays valid. Optional; not owned.
  packaging::GrowingFile* progress = nullptr;
};

struct DownloadReport {
  std::uint64_t resumed_from = 0;  // bytes already on disk before this call
  std::uint64_t fetched = 0;       // bytes received in this call
  std::string sha256;              // of the whole file, lower-case hex
};

Result<DownloadReport> DownloadPackage(platform::HttpClient& client,
                                       const DownloadRequest& request);

}  // namespace fabu::agent
