// The manifest of a fabu package: what it holds, signed by its publisher.
//
// The JSON form is the contract documented in docs/package-format.md. Parse
// is strict: unknown top-level fields are allowed (forward compatibility) but
// every known field must have the right type and value, and every file entry
// must be a safe relative path. Errors name the field ("files[3].sha256: ...").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.hpp"
#include "protocol/timestamp.hpp"
#include "protocol/version.hpp"

namespace fabu::packaging {

inline constexpr std::size_t kMaxManifestBytes = 1 << 20;  // 1 MiB
inline constexpr int kFormatVersion = 1;

enum class EntryType { kFile, kDir, kSymlink };
enum class Compression { kGzip, kZstd };

std::string_view CompressionName(Compression c);
Result<Compression> ParseCompression(std::string_view name);

struct ManifestEntry {
  std::string path;  // relative, '/'-separated, no "." or ".." parts
  EntryType type = EntryType::kFile;
  std::uint32_t mode = 0644;  // permission bits only (no setuid/setgid/sticky)
  std::uint64_t size = 0;     // files only
  std::string sha256;         // files only, lower-case hex
  std::string target;         // symlinks only, must stay inside the tree
};

struct PayloadInfo {
  std::string file;  // "payload.tar.gz" or "payload.tar.zst"
  Compression compression = Compression::kGzip;
  std::uint64_t size = 0;  // bytes of the compressed payload member
  std::string sha256;      // of the compressed payload member
};

// The hooks a package may carry, in the order the agent runs them.
inline constexpr std::string_view kHookNames[] = {"pre_install", "post_install", "activate",
                                                  "health_check", "rollback"};

struct Manifest {
  int format = kFormatVersion;
  std::string name;
  protocol::Version version;
  std::string created;  // RFC 3339 UTC, e.g. 2026-11-25T21:00:00Z
  std::string key_id;
  PayloadInfo payload;
  std::vector<ManifestEntry> files;
  std::map<std::string, std::string> hooks;    // hook name -> path inside the payload
  std::optional<std::string> expires;          // RFC 3339
  std::map<std::string, std::string> targets;  // e.g. os=linux, arch=x86_64

  static Result<Manifest> Parse(std::string_view json);
  std::string ToJson() const;  // pretty-printed, stable field order

  // Sum of the sizes of every file entry: the most extraction may write.
  std::uint64_t TotalFileBytes() const;
  // Package file name: NAME-Va.b.c.d.fabu
  std::string FileName() const;
};

// Validates a package name: 1-64 of [a-z0-9._-], starting with a letter or digit.
Result<void> CheckPackageName(std::string_view name);

// Checks that `path` is a safe relative entry path; returns it normalized
// (no "./" prefix, no trailing '/').
Result<std::string> NormalizeEntryPath(std::string_view path);

// True when a symlink at entry `path` pointing to `target` resolves inside the
// package tree (judged on the text alone: relative, never above the root).
// Necessary, not sufficient: see CheckSymlinkTree.
bool SymlinkStaysInside(std::string_view path, std::string_view target);

// The most links one path resolution follows, as the kernel's MAXSYMLINKS.
inline constexpr int kMaxSymlinkHops = 40;

// Resolves every symlink among `entries` as the kernel will once the tree is on
// disk: its target walked component by component from the link's directory,
// every component that is another entry's symlink replaced by that link's
// target (a chain), `..` taking the resolved directory's parent, at most
// kMaxSymlinkHops links. Refuses a link whose resolution leaves the tree at
// any step (`sub/up -> ..` with `esc -> sub/up/..`: each stays inside on its
// own text, together they climb out), a loop or a chain over the bound, and
// any entry that lies beneath a symlink (it would be written through it).
// Components no entry names are taken as plain directories, so the check is
// never looser than the lexical one. Errors name the entry
// (docs/package-format.md, "Symlinks").
Result<void> CheckSymlinkTree(const std::vector<ManifestEntry>& entries);

}  // namespace fabu::packaging
