// Hand-made packages for tests, good and malicious.
//
// The forge writes exactly what a test asks for, including what `fabu pack
// build` would never write (`../` entries, devices, hard links, members out of
// order), signed by a key the reader trusts, so a test shows that the reader
// refuses the content itself and not merely a bad signature.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "packaging/growing_file.hpp"
#include "packaging/keys.hpp"
#include "packaging/manifest.hpp"

namespace fabu::testing {

enum class ForgeType { kFile, kDir, kSymlink, kHardlink, kCharDevice, kFifo };

struct ForgeEntry {
  std::string path;
  ForgeType type = ForgeType::kFile;
  unsigned mode = 0644;
  std::string data;    // files
  std::string target;  // symlinks and hard links
  // When set, the tar header claims this size instead of data.size().
  long long header_size = -1;
};

// A tar of `entries`, compressed as given.
std::string ForgePayload(const std::vector<ForgeEntry>& entries,
                         packaging::Compression compression = packaging::Compression::kGzip);

// The manifest that truthfully describes `entries` (files, dirs, symlinks
// only) and `payload`, signed later by `key`.
packaging::Manifest ForgeManifest(
    const std::vector<ForgeEntry>& entries, const std::string& payload,
    const packaging::SigningKey& key,
    packaging::Compression compression = packaging::Compression::kGzip);

// Writes an outer tar of (name, data) members, in the given order.
void ForgeTar(const std::filesystem::path& path,
              const std::vector<std::pair<std::string, std::string>>& members);

// A complete package: manifest JSON signed by `key`, then the payload.
void ForgePackage(const std::filesystem::path& path, const std::string& manifest_json,
                  const std::string& payload, const packaging::SigningKey& key,
                  const std::string& payload_name = "payload.tar.gz");

// A tree a trusted publisher could sign whose symlinks each stay inside on
// their own text, but lead outside the tree, or nowhere, once resolved
// through one another as the kernel will after extraction (chains of 2 and 3
// links, a link to a directory with a file written through it, loops). The
// payload and the manifest both hold `entries`, so only a reader that
// resolves the chains refuses them.
struct HostileSymlinkTree {
  std::string name;
  std::vector<ForgeEntry> entries;
  std::string needle;  // what the refusal must say: names the entry
};
std::vector<HostileSymlinkTree> HostileSymlinkTrees();

std::string SignatureBytes(const packaging::SigningKey& key, const std::string& message);

// Copies `from` into `to` (created empty first) on a thread, `chunk` bytes at
// a time with a short pause, telling `growing` after each, as a download
// does. After `stop_after` bytes (or the whole file) it calls
// growing.Abandon(*abandon) when `abandon` is set, else growing.Complete().
std::jthread WriteGrowing(const std::filesystem::path& from, const std::filesystem::path& to,
                          packaging::GrowingFile& growing, std::size_t chunk,
                          std::size_t stop_after = SIZE_MAX,
                          std::optional<Error> abandon = std::nullopt);

}  // namespace fabu::testing
