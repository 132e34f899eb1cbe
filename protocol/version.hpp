// Release version numbers and the rules for moving between them (procedure §6.1.3).
//
// A version is written `Va.b.c.d`:
//   a  major number          (architecture change)      0..99
//   b  feature number        (feature added)            0..99
//   c  specification number  (specification change)    0..99
//   d  build number          (every rebuild)            0..2^63-1
// Parts are decimal without leading zeros; the leading `V` is required.
//
// Pure value type; all functions are thread-safe.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/error.hpp"

namespace fabu::protocol {

// Which part of a version a change moves.
enum class VersionChange { kMajor, kFeature, kSpec, kBuild };

// Parses "major", "feature", "spec" or "build".
Result<VersionChange> ParseVersionChange(std::string_view text);

struct Version {
  static constexpr std::uint32_t kMaxPart = 99;

  std::uint32_t major = 1;
  std::uint32_t feature = 0;
  std::uint32_t spec = 0;
  std::uint64_t build = 0;

  // Parses `Va.b.c.d`; the error names the first problem found.
  static Result<Version> Parse(std::string_view text);

  std::string ToString() const;

  auto operator<=>(const Version&) const = default;
};

// The version that follows `current` after a change of the given kind:
//   major   -> V(a+1).0.0.0 (error past V99)
//   feature -> Va.(b+1).0.0, carrying into a past 99
//   spec    -> Va.b.(c+1).0, carrying into b (and on into a) past 99
//   build   -> Va.b.c.(d+1)
Result<Version> NextVersion(const Version& current, VersionChange change);

// Succeeds when `next` may be released after `previous`; otherwise the error
// names the rule that was broken:
//   - next must be greater than previous;
//   - when the major number rises, feature and specification must be 0;
//   - when the feature number rises, specification must be 0;
//   - the build number may take any value once a, b or c rose, and must rise
//     otherwise (which "greater" already demands).
Result<void> CheckSuccession(const Version& previous, const Version& next);

}  // namespace fabu::protocol
