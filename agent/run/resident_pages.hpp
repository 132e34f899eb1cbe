// Letting go of the pages start-up touched.
//
// Most of an idle agent's resident memory is pages of its shared libraries
// (OpenSSL, libcurl and their dependencies) that only start-up ran: loading
// and relocating them, reading the configuration, the first TLS handshake,
// an install. They stay mapped, and counted in the agent's RSS, until the
// kernel needs the memory. ReleaseCleanFileMappings drops this process's
// page-table entries of every private, read-only, file-backed mapping none of
// whose pages was ever copied on write (smaps "Anonymous: 0"): code and
// constants, identical to the file. The page cache keeps the pages (other
// processes share them); the next access maps them again with a minor fault,
// so only what the long poll keeps using stays resident. Mappings that are
// writable, anonymous, or hold a copied page (relocated RELRO data) are never
// touched, so no content can be lost.
//
// Linux only (/proc/self/smaps, madvise MADV_DONTNEED). Call from one thread
// while the others are idle; it is safe but pointless otherwise.
#pragma once

#include <cstddef>

namespace fabu::agent {

// Returns the bytes of mappings released (0 when /proc is unavailable).
std::size_t ReleaseCleanFileMappings();

}  // namespace fabu::agent
