#include "protocol/version.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <limits>

namespace fabu::protocol {
namespace {

constexpr std::array<std::string_view, 4> kPartNames = {"major", "feature", "specification",
                                                        "build"};

// Parses one decimal part without sign or leading zeros.
Result<std::uint64_t> ParsePart(std::string_view text, std::size_t index, std::string_view whole) {
  const std::string_view name = kPartNames[index];
  if (text.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("version \"{}\": {} number is empty", whole, name));
  }
  for (char ch : text) {
    if (ch < '0' || ch > '9') {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("version \"{}\": {} number \"{}\" must be decimal digits", whole,
                              name, text));
    }
  }
  if (text.size() > 1 && text.front() == '0') {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("version \"{}\": {} number \"{}\" has a leading zero", whole, name, text));
  }
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() ||
      value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("version \"{}\": {} number \"{}\" is too large", whole, name, text));
  }
  if (index < 3 && value > Version::kMaxPart) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("version \"{}\": {} number must be 0..99, got {}", whole, name, value));
  }
  return value;
}

}  // namespace

Result<VersionChange> ParseVersionChange(std::string_view text) {
  if (text == "major") return VersionChange::kMajor;
  if (text == "feature") return VersionChange::kFeature;
  if (text == "spec") return VersionChange::kSpec;
  if (text == "build") return VersionChange::kBuild;
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("unknown change \"{}\": expected major, feature, spec or build", text));
}

Result<Version> Version::Parse(std::string_view text) {
  if (text.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "version is empty: expected Va.b.c.d, e.g. V1.0.0.0");
  }
  if (text.front() != 'V') {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("version \"{}\" must start with 'V' (e.g. V1.0.0.0)", text));
  }
  std::array<std::string_view, 4> parts;
  std::size_t count = 0;
  std::string_view rest = text.substr(1);
  while (true) {
    const std::size_t dot = rest.find('.');
    if (count == parts.size()) {
      count++;  // too many parts
      break;
    }
    parts[count++] = rest.substr(0, dot);
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  if (count != 4) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("version \"{}\": four parts needed (Va.b.c.d), got {}", text,
                            count > 4 ? std::string("more") : std::to_string(count)));
  }
  Version version;
  std::array<std::uint64_t, 4> values{};
  for (std::size_t i = 0; i < 4; ++i) {
    auto value = ParsePart(parts[i], i, text);
    if (!value) return std::unexpected(value.error());
    values[i] = *value;
  }
  version.major = static_cast<std::uint32_t>(values[0]);
  version.feature = static_cast<std::uint32_t>(values[1]);
  version.spec = static_cast<std::uint32_t>(values[2]);
  version.build = values[3];
  return version;
}

std::string Version::ToString() const {
  return fmt::format("V{}.{}.{}.{}", major, feature, spec, build);
}

Result<Version> NextVersion(const Version& current, VersionChange change) {
  Version next = current;
  switch (change) {
    case VersionChange::kBuild:
      if (current.build >= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("{}: build number cannot rise further", current.ToString()));
      }
      next.build = current.build + 1;
      return next;
    case VersionChange::kSpec:
      next.build = 0;
      if (current.spec < Version::kMaxPart) {
        next.spec = current.spec + 1;
        return next;
      }
      [[fallthrough]];  // specification past 99 carries into the feature number
    case VersionChange::kFeature:
      next.spec = 0;
      next.build = 0;
      if (current.feature < Version::kMaxPart) {
        next.feature = current.feature + 1;
        return next;
      }
      [[fallthrough]];  // feature past 99 carries into the major number
    case VersionChange::kMajor:
      if (current.major >= Version::kMaxPart) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("{}: major number cannot rise past 99", current.ToString()));
      }
      return Version{current.major + 1, 0, 0, 0};
  }
  return Fail(ErrorCode::kInternal, "unknown version change");
}

Result<void> CheckSuccession(const Version& previous, const Version& next) {
  const std::string prev_text = previous.ToString();
  const std::string next_text = next.ToString();
  if (next <= previous) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("{} must be greater than {}", next_text, prev_text));
  }
  if (next.major > previous.major) {
    if (next.feature != 0 || next.spec != 0) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("{} -> {}: when the major number rises, the feature and "
                              "specification numbers must be 0 (expected V{}.0.0.d)",
                              prev_text, next_text, next.major));
    }
    return {};
  }
  if (next.feature > previous.feature) {
    if (next.spec != 0) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("{} -> {}: when the feature number rises, the specification "
                              "number must be 0 (expected V{}.{}.0.d)",
                              prev_text, next_text, next.major, next.feature));
    }
    return {};
  }
  // Same major and feature, greater overall: either spec rose (any build
  // number may follow) or only the build number rose.
  return {};
}

}  // namespace fabu::protocol
