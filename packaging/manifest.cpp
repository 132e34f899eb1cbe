#include "packaging/manifest.hpp"

#include <deque>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <vector>

#include "fmt/format.h"

namespace fabu::packaging {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

bool IsHex(std::string_view s, std::size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string_view TypeName(const Json& v) { return v.type_name(); }

// Reads field `key` of `obj` as a string; `path` names the object for errors.
Result<std::string> GetString(const Json& obj, std::string_view path, const char* key,
                              bool required = true) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (!required) return std::string();
    return Fail(ErrorCode::kInvalidArgument, fmt::format("{}{}: missing", path, key));
  }
  if (!it->is_string()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}{}: must be a string, got {}", path, key, TypeName(*it)));
  }
  return it->get<std::string>();
}

Result<std::uint64_t> GetUnsigned(const Json& obj, std::string_view path, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    return Fail(ErrorCode::kInvalidArgument, fmt::format("{}{}: missing", path, key));
  }
  if (!it->is_number_unsigned()) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}{}: must be a non-negative integer", path, key));
  }
  return it->get<std::uint64_t>();
}

Result<std::uint32_t> ParseMode(std::string_view text, std::string_view field) {
  if (text.size() < 3 || text.size() > 4) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("{}: mode \"{}\" must be octal like \"0755\"", field, text));
  }
  std::uint32_t mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}: mode \"{}\" must be octal like \"0755\"", field, text));
    }
    mode = mode * 8 + static_cast<std::uint32_t>(c - '0');
  }
  if (mode & 07000) {
    return Fail(ErrorCode::kUnsafe,
                fmt::format("{}: mode {} has setuid, setgid or sticky bits; refused", field, text));
  }
  return mode;
}

std::string FormatMode(std::uint32_t mode) { return fmt::format("{:04o}", mode); }

std::string_view EntryTypeName(EntryType t) {
  switch (t) {
    case EntryType::kFile:
      return "file";
    case EntryType::kDir:
      return "dir";
    case EntryType::kSymlink:
      return "symlink";
  }
  return "file";
}

}  // namespace

bool SymlinkStaysInside(std::string_view path, std::string_view target) {
  if (target.empty() || target.front() == '/') return false;
  // Depth of the link's directory below the root.
  int depth = 0;
  for (char c : path) {
    if (c == '/') depth++;
  }
  std::size_t start = 0;
  while (start <= target.size()) {
    std::size_t slash = target.find('/', start);
    std::string_view part = target.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") {
      if (--depth < 0) return false;
    } else if (!part.empty() && part != ".") {
      depth++;
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    parts.push_back(path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

std::string JoinPath(const std::vector<std::string_view>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

// The links a resolution followed, for messages: `"a" -> "b", "b" -> ".."`.
std::string DescribeChain(const std::vector<const ManifestEntry*>& chain) {
  std::string out;
  constexpr std::size_t kShown = 4;
  for (std::size_t i = 0; i < chain.size() && i < kShown; ++i) {
    if (i > 0) out += ", ";
    out += fmt::format("\"{}\" -> \"{}\"", chain[i]->path, chain[i]->target);
  }
  if (chain.size() > kShown) out += fmt::format(", ... ({} links)", chain.size());
  return out;
}

// Resolves `link` through the symlinks of `by_path` (see CheckSymlinkTree).
Result<void> ResolveLink(
    const ManifestEntry& link,
    const std::unordered_map<std::string_view, const ManifestEntry*>& by_path) {
  // Where the resolution stands (entry names from the root) and what is left.
  std::vector<std::string_view> at = SplitPath(link.path);
  at.pop_back();
  std::deque<std::string_view> rest;
  for (auto part : SplitPath(link.target)) rest.push_back(part);
  std::vector<const ManifestEntry*> followed;  // links after `link` itself
  int hops = 1;
  auto leaves = [&] {
    return Fail(
        ErrorCode::kUnsafe,
        fmt::format("symlink \"{}\" -> \"{}\" leaves the package tree{}", link.path, link.target,
                    followed.empty() ? std::string()
                                     : fmt::format(" once its links are followed ({})",
                                                   DescribeChain(followed))));
  };
  if (link.target.empty() || link.target.front() == '/') return leaves();
  while (!rest.empty()) {
    const std::string_view part = rest.front();
    rest.pop_front();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (at.empty()) return leaves();
      at.pop_back();
      continue;
    }
    at.push_back(part);
    auto it = by_path.find(JoinPath(at));
    if (it == by_path.end() || it->second->type != EntryType::kSymlink) continue;
    const ManifestEntry& next = *it->second;
    if (++hops > kMaxSymlinkHops) {
      return Fail(ErrorCode::kUnsafe,
                  fmt::format("symlink \"{}\" -> \"{}\" does not resolve: more than {} links "
                              "in a chain, a loop ({})",
                              link.path, link.target, kMaxSymlinkHops, DescribeChain(followed)));
    }
    followed.push_back(&next);
    at.pop_back();
    if (next.target.empty() || next.target.front() == '/') return leaves();
    const auto parts = SplitPath(next.target);
    rest.insert(rest.begin(), parts.begin(), parts.end());
  }
  return {};
}

}  // namespace

Result<void> CheckSymlinkTree(const std::vector<ManifestEntry>& entries) {
  std::unordered_map<std::string_view, const ManifestEntry*> by_path;
  by_path.reserve(entries.size());
  bool any_link = false;
  for (const auto& e : entries) {
    by_path.emplace(e.path, &e);
    any_link = any_link || e.type == EntryType::kSymlink;
  }
  if (!any_link) return {};
  for (const auto& e : entries) {
    if (e.type != EntryType::kSymlink) continue;
    if (auto ok = ResolveLink(e, by_path); !ok) return ok;
  }
  for (const auto& e : entries) {
    for (std::size_t slash = e.path.find('/'); slash != std::string::npos;
         slash = e.path.find('/', slash + 1)) {
      auto it = by_path.find(std::string_view(e.path).substr(0, slash));
      if (it != by_path.end() && it->second->type == EntryType::kSymlink) {
        return Fail(ErrorCode::kUnsafe,
                    fmt::format("\"{}\" lies beneath the symlink \"{}\"; refused", e.path,
                                it->second->path));
      }
    }
  }
  return {};
}

std::string_view CompressionName(Compression c) {
  return c == Compression::kZstd ? "zstd" : "gzip";
}

Result<Compression> ParseCompression(std::string_view name) {
  if (name == "gzip") return Compression::kGzip;
  if (name == "zstd") return Compression::kZstd;
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("unknown compression \"{}\": expected gzip or zstd", name));
}

Result<void> CheckPackageName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("package name \"{}\" must be 1 to 64 characters", name));
  }
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  };
  auto first = name.front();
  if (!((first >= 'a' && first <= 'z') || (first >= '0' && first <= '9'))) {
    return Fail(
        ErrorCode::kInvalidArgument,
        fmt::format("package name \"{}\" must start with a lower-case letter or digit", name));
  }
  for (char c : name) {
    if (!ok_char(c)) {
      return Fail(
          ErrorCode::kInvalidArgument,
          fmt::format("package name \"{}\" may hold only a-z, 0-9, '.', '_' and '-'", name));
    }
  }
  return {};
}

Result<std::string> NormalizeEntryPath(std::string_view path) {
  std::string_view p = path;
  while (p.starts_with("./")) p.remove_prefix(2);
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  if (p.empty() || p == ".") {
    return Fail(ErrorCode::kUnsafe, fmt::format("entry path \"{}\" is empty", path));
  }
  if (p.size() > 4096) {
    return Fail(ErrorCode::kUnsafe,
                fmt::format("entry path \"{}...\" is too long", path.substr(0, 64)));
  }
  if (p.front() == '/') {
    return Fail(ErrorCode::kUnsafe, fmt::format("entry path \"{}\" is absolute", path));
  }
  if (p.find('\0') != std::string_view::npos) {
    return Fail(ErrorCode::kUnsafe, "entry path holds a NUL byte");
  }
  std::size_t start = 0;
  while (true) {
    std::size_t slash = p.find('/', start);
    std::string_view part =
        p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") {
      return Fail(ErrorCode::kUnsafe, fmt::format("entry path \"{}\" contains \"..\"", path));
    }
    if (part.empty() || part == ".") {
      return Fail(ErrorCode::kUnsafe,
                  fmt::format("entry path \"{}\" has an empty or \".\" component", path));
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return std::string(p);
}

Result<Manifest> Manifest::Parse(std::string_view text) {
  if (text.size() > kMaxManifestBytes) {
    return Fail(ErrorCode::kTooLarge, fmt::format("manifest.json is {} bytes; the limit is {}",
                                                  text.size(), kMaxManifestBytes));
  }
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Fail(ErrorCode::kInvalidArgument, "manifest.json is not valid JSON");
  if (!j.is_object()) return Fail(ErrorCode::kInvalidArgument, "manifest.json must be an object");

  Manifest m;
  auto format = j.find("format");
  if (format == j.end() || !format->is_number_integer()) {
    return Fail(ErrorCode::kInvalidArgument, "format: missing or not an integer");
  }
  if (format->get<int>() != kFormatVersion) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("format: version {} is not supported (this fabu reads format {})",
                            format->dump(), kFormatVersion));
  }
  auto name = GetString(j, "", "name");
  if (!name) return std::unexpected(name.error());
  if (auto ok = CheckPackageName(*name); !ok)
    return std::unexpected(ok.error().WithContext("name"));
  m.name = *name;
  auto version = GetString(j, "", "version");
  if (!version) return std::unexpected(version.error());
  auto parsed_version = protocol::Version::Parse(*version);
  if (!parsed_version) return std::unexpected(parsed_version.error().WithContext("version"));
  m.version = *parsed_version;
  auto created = GetString(j, "", "created");
  if (!created) return std::unexpected(created.error());
  if (auto t = protocol::ParseRfc3339(*created); !t)
    return std::unexpected(t.error().WithContext("created"));
  m.created = *created;
  auto key_id = GetString(j, "", "key_id");
  if (!key_id) return std::unexpected(key_id.error());
  if (!IsHex(*key_id, 16)) {
    return Fail(ErrorCode::kInvalidArgument, "key_id: must be 16 lower-case hex digits");
  }
  m.key_id = *key_id;

  auto payload = j.find("payload");
  if (payload == j.end() || !payload->is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "payload: missing or not an object");
  }
  auto compression = GetString(*payload, "payload.", "compression");
  if (!compression) return std::unexpected(compression.error());
  auto comp = ParseCompression(*compression);
  if (!comp) return std::unexpected(comp.error().WithContext("payload.compression"));
  m.payload.compression = *comp;
  auto file = GetString(*payload, "payload.", "file");
  if (!file) return std::unexpected(file.error());
  const std::string expected_file =
      *comp == Compression::kZstd ? "payload.tar.zst" : "payload.tar.gz";
  if (*file != expected_file) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("payload.file: \"{}\" does not match {} compression (expected {})",
                            *file, *compression, expected_file));
  }
  m.payload.file = *file;
  auto psize = GetUnsigned(*payload, "payload.", "size");
  if (!psize) return std::unexpected(psize.error());
  m.payload.size = *psize;
  auto psha = GetString(*payload, "payload.", "sha256");
  if (!psha) return std::unexpected(psha.error());
  if (!IsHex(*psha, 64)) {
    return Fail(ErrorCode::kInvalidArgument, "payload.sha256: must be 64 lower-case hex digits");
  }
  m.payload.sha256 = *psha;

  auto files = j.find("files");
  if (files == j.end() || !files->is_array()) {
    return Fail(ErrorCode::kInvalidArgument, "files: missing or not an array");
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < files->size(); ++i) {
    const Json& f = (*files)[i];
    const std::string where = fmt::format("files[{}].", i);
    if (!f.is_object()) {
      return Fail(ErrorCode::kInvalidArgument, fmt::format("files[{}]: must be an object", i));
    }
    ManifestEntry e;
    auto path = GetString(f, where, "path");
    if (!path) return std::unexpected(path.error());
    auto norm = NormalizeEntryPath(*path);
    if (!norm) return std::unexpected(norm.error().WithContext(where + "path"));
    if (*norm != *path) {
      return Fail(
          ErrorCode::kInvalidArgument,
          fmt::format("{}path: \"{}\" is not in normal form (\"{}\")", where, *path, *norm));
    }
    if (!seen.insert(*norm).second) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("{}path: \"{}\" is listed twice", where, *norm));
    }
    e.path = *norm;
    auto type = GetString(f, where, "type");
    if (!type) return std::unexpected(type.error());
    if (*type == "file") {
      e.type = EntryType::kFile;
    } else if (*type == "dir") {
      e.type = EntryType::kDir;
    } else if (*type == "symlink") {
      e.type = EntryType::kSymlink;
    } else {
      return Fail(
          ErrorCode::kUnsafe,
          fmt::format("{}type: \"{}\" is not allowed (file, dir or symlink)", where, *type));
    }
    if (e.type != EntryType::kSymlink) {
      auto mode = GetString(f, where, "mode");
      if (!mode) return std::unexpected(mode.error());
      auto parsed = ParseMode(*mode, where + "mode");
      if (!parsed) return std::unexpected(parsed.error());
      e.mode = *parsed;
    } else {
      e.mode = 0777;
    }
    if (e.type == EntryType::kFile) {
      auto size = GetUnsigned(f, where, "size");
      if (!size) return std::unexpected(size.error());
      e.size = *size;
      auto sha = GetString(f, where, "sha256");
      if (!sha) return std::unexpected(sha.error());
      if (!IsHex(*sha, 64)) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("{}sha256: must be 64 lower-case hex digits", where));
      }
      e.sha256 = *sha;
    }
    if (e.type == EntryType::kSymlink) {
      auto target = GetString(f, where, "target");
      if (!target) return std::unexpected(target.error());
      if (!SymlinkStaysInside(e.path, *target)) {
        return Fail(ErrorCode::kUnsafe,
                    fmt::format("{}target: symlink \"{}\" -> \"{}\" leaves the package tree", where,
                                e.path, *target));
      }
      e.target = *target;
    }
    m.files.push_back(std::move(e));
  }
  // Each link stays inside on its own text; now the links together.
  if (auto tree = CheckSymlinkTree(m.files); !tree) {
    return std::unexpected(tree.error().WithContext("files"));
  }

  if (auto hooks = j.find("hooks"); hooks != j.end()) {
    if (!hooks->is_object()) return Fail(ErrorCode::kInvalidArgument, "hooks: must be an object");
    for (const auto& [hook, value] : hooks->items()) {
      bool known = false;
      for (auto n : kHookNames) known = known || n == hook;
      if (!known) {
        return Fail(ErrorCode::kInvalidArgument,
                    fmt::format("hooks.{}: unknown hook (expected pre_install, post_install, "
                                "activate, health_check or rollback)",
                                hook));
      }
      if (!value.is_string()) {
        return Fail(ErrorCode::kInvalidArgument, fmt::format("hooks.{}: must be a string", hook));
      }
      const std::string target = value.get<std::string>();
      const ManifestEntry* entry = nullptr;
      for (const auto& e : m.files) {
        if (e.path == target) entry = &e;
      }
      if (entry == nullptr || entry->type != EntryType::kFile || (entry->mode & 0100) == 0) {
        return Fail(
            ErrorCode::kInvalidArgument,
            fmt::format("hooks.{}: \"{}\" is not an executable file of the payload", hook, target));
      }
      m.hooks[hook] = target;
    }
  }
  if (auto expires = j.find("expires"); expires != j.end()) {
    if (!expires->is_string())
      return Fail(ErrorCode::kInvalidArgument, "expires: must be a string");
    auto t = protocol::ParseRfc3339(expires->get<std::string>());
    if (!t) return std::unexpected(t.error().WithContext("expires"));
    m.expires = expires->get<std::string>();
  }
  if (auto targets = j.find("targets"); targets != j.end()) {
    if (!targets->is_object()) {
      return Fail(ErrorCode::kInvalidArgument, "targets: must be an object");
    }
    for (const auto& [key, value] : targets->items()) {
      if (!value.is_string()) {
        return Fail(ErrorCode::kInvalidArgument, fmt::format("targets.{}: must be a string", key));
      }
      m.targets[key] = value.get<std::string>();
    }
  }
  return m;
}

std::string Manifest::ToJson() const {
  OrderedJson j;
  j["format"] = format;
  j["name"] = name;
  j["version"] = version.ToString();
  j["created"] = created;
  j["key_id"] = key_id;
  j["payload"] = {{"file", payload.file},
                  {"compression", std::string(CompressionName(payload.compression))},
                  {"size", payload.size},
                  {"sha256", payload.sha256}};
  OrderedJson list = OrderedJson::array();
  for (const auto& e : files) {
    OrderedJson f;
    f["path"] = e.path;
    f["type"] = std::string(EntryTypeName(e.type));
    if (e.type == EntryType::kFile) f["size"] = e.size;
    if (e.type != EntryType::kSymlink) f["mode"] = FormatMode(e.mode);
    if (e.type == EntryType::kFile) f["sha256"] = e.sha256;
    if (e.type == EntryType::kSymlink) f["target"] = e.target;
    list.push_back(std::move(f));
  }
  j["files"] = std::move(list);
  OrderedJson hook_obj = OrderedJson::object();
  for (const auto& [k, v] : hooks) hook_obj[k] = v;
  j["hooks"] = std::move(hook_obj);
  if (expires) j["expires"] = *expires;
  if (!targets.empty()) {
    OrderedJson t = OrderedJson::object();
    for (const auto& [k, v] : targets) t[k] = v;
    j["targets"] = std::move(t);
  }
  return j.dump(2) + "\n";
}

std::uint64_t Manifest::TotalFileBytes() const {
  std::uint64_t total = 0;
  for (const auto& e : files) total += e.size;
  return total;
}

std::string Manifest::FileName() const { return name + "-" + version.ToString() + ".fabu"; }

}  // namespace fabu::packaging
