// Downloading a package file with resume (issue 4 §3 "Downloads").
//
// The bytes go to `part` (DIR/downloads/<package_id>.part); a later call —
// also after the agent was restarted — asks only for what is missing
// (Range: bytes=<size of part>-). A server that ignores the Range (200) makes
// the download start over; a 206 starting elsewhere is refused. The file may
// never grow beyond the size the assignment announced: a server sending more
// is cut off, the partial file is removed (its content is suspect) and the
// error is kTooLarge. When `size` bytes are there, the file is synced and
// renamed to `destination` (DIR/downloads/<package_id>.fabu).
//
// Nothing here trusts the bytes: the deployment engine verifies the digest and
// signature. Errors: kUnavailable when the transfer broke (call again to
// resume), kTooLarge, and StatusError codes for HTTP refusals (403, 404, ...),
// kIo for the local disk. Not thread-safe (one download per file at a time).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "agent/net/https_client.hpp"
#include "protocol/error.hpp"

namespace fabu::agent {

struct DownloadRequest {
  std::string url;
  std::string bearer;  // credential, or "" for a mirror that needs none
  std::filesystem::path part;
  std::filesystem::path destination;
  std::uint64_t size = 0;  // exact size announced by the assignment
};

struct DownloadReport {
  std::uint64_t resumed_from = 0;  // bytes already on disk before this call
  std::uint64_t fetched = 0;       // bytes received in this call
};

Result<DownloadReport> DownloadPackage(HttpsClient& client, const DownloadRequest& request);

}  // namespace fabu::agent
