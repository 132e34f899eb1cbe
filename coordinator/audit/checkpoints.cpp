#include "coordinator/audit/checkpoints.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "coordinator/audit/audit_log.hpp"
#include "platform/fs/files.hpp"

namespace fabu::coordinator {
namespace {

constexpr std::string_view kSignedPrefix = "fabu-audit-checkpoint-v1\n";

std::optional<packaging::Signature> SignatureFromHex(std::string_view hex) {
  packaging::Signature signature{};
  if (hex.size() != signature.size() * 2) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < signature.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    signature[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return signature;
}

std::unexpected<Error> ErrnoError(std::string_view what, const std::filesystem::path& path) {
  return Fail(ErrorCode::kIo, fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
}

}  // namespace

std::string AuditCheckpoint::SignedContent() const {
  nlohmann::json content = ToJson();
  content.erase("signature");
  return std::string(kSignedPrefix) + content.dump();
}

nlohmann::json AuditCheckpoint::ToJson() const {
  nlohmann::json out = {
      {"seq", seq},       {"hash", hash},     {"users_sha256", users_sha256}, {"time", time},
      {"reason", reason}, {"key_id", key_id}, {"signature", signature}};
  if (users) out["users"] = *users;
  return out;
}

Result<AuditCheckpoint> AuditCheckpoint::FromJson(const nlohmann::json& json) {
  if (!json.is_object()) return Fail(ErrorCode::kInvalidArgument, "not a JSON object");
  AuditCheckpoint c;
  try {
    c.seq = json.at("seq").get<std::int64_t>();
    c.hash = json.at("hash").get<std::string>();
    c.users_sha256 = json.at("users_sha256").get<std::string>();
    c.time = json.at("time").get<std::string>();
    c.reason = json.at("reason").get<std::string>();
    c.key_id = json.at("key_id").get<std::string>();
    c.signature = json.at("signature").get<std::string>();
    if (json.contains("users")) c.users = json.at("users");
  } catch (const nlohmann::json::exception& e) {
    return std::unexpected(ErrorFromException(e, ErrorCode::kInvalidArgument, "not a checkpoint"));
  }
  return c;
}

std::string UsersRosterDigest(const nlohmann::json& roster) { return ObjectDigest(roster); }

Result<void> SignCheckpoint(AuditCheckpoint& checkpoint, const packaging::SigningKey& key) {
  checkpoint.key_id = key.public_key().key_id();
  checkpoint.signature.clear();
  const std::string content = checkpoint.SignedContent();
  auto signature = key.Sign(std::span<const char>(content.data(), content.size()));
  if (!signature) return std::unexpected(signature.error());
  checkpoint.signature = packaging::ToHex(*signature);
  return {};
}

Result<void> VerifyCheckpoint(const AuditCheckpoint& checkpoint, const packaging::PublicKey& key) {
  if (checkpoint.key_id != key.key_id()) {
    return Fail(ErrorCode::kFailedPrecondition,
                fmt::format("signed by key {}, not by the checkpoint key {}", checkpoint.key_id,
                            key.key_id()));
  }
  const auto signature = SignatureFromHex(checkpoint.signature);
  const std::string content = checkpoint.SignedContent();
  if (!signature ||
      !key.Verify(std::span<const char>(content.data(), content.size()), *signature)) {
    return Fail(ErrorCode::kFailedPrecondition,
                "its signature does not match its content: the line was altered or forged");
  }
  return {};
}

Result<packaging::SigningKey> LoadOrCreateCheckpointKey(const std::filesystem::path& prefix,
                                                        bool& created) {
  const std::filesystem::path private_key = prefix.string() + ".key";
  std::error_code ec;
  created = false;
  if (std::filesystem::exists(private_key, ec)) {
    return packaging::SigningKey::FromPemFile(private_key);
  }
  auto key = packaging::SigningKey::Generate();
  if (!key) return key;
  if (auto ok = key->WriteFiles(prefix); !ok) return std::unexpected(ok.error());
  // WriteFiles makes the public half 0644; in the data directory every file
  // is the coordinator's alone (docs/coordinator.md "Files and modes").
  const std::filesystem::path public_key = prefix.string() + ".pub";
  std::filesystem::permissions(
      public_key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  if (ec) {
    return Fail(ErrorCode::kIo, fmt::format("chmod {}: {}", public_key.string(), ec.message()));
  }
  if (auto ok = platform::SyncDirectory(prefix.parent_path()); !ok)
    return std::unexpected(ok.error());
  created = true;
  return key;
}

Result<void> AppendCheckpoint(const std::filesystem::path& file,
                              const AuditCheckpoint& checkpoint) {
  std::error_code ec;
  const bool is_new = !std::filesystem::exists(file, ec);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("opening", file);
  const std::string line = checkpoint.ToJson().dump() + "\n";
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto error = ErrnoError("appending to", file);
      ::close(fd);
      return error;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto error = ErrnoError("syncing", file);
    ::close(fd);
    return error;
  }
  ::close(fd);
  if (is_new) return platform::SyncDirectory(file.parent_path());
  return {};
}

Result<std::vector<CheckpointLine>> ReadCheckpoints(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return ErrnoError("opening", file);
  std::vector<std::string> lines;
  std::string text;
  while (std::getline(in, text)) lines.push_back(text);
  const bool ends_with_newline = [&] {
    in.clear();
    in.seekg(-1, std::ios::end);
    char last = 0;
    return in.get(last) && last == '\n';
  }();
  std::vector<CheckpointLine> out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const bool last_and_cut = i + 1 == lines.size() && !ends_with_newline;
    auto json = nlohmann::json::parse(lines[i], nullptr, false);
    auto checkpoint = json.is_discarded()
                          ? Result<AuditCheckpoint>(Fail(ErrorCode::kInvalidArgument, "not JSON"))
                          : AuditCheckpoint::FromJson(json);
    if (!checkpoint) {
      if (last_and_cut) break;  // a write cut short by a crash
      return Fail(ErrorCode::kInvalidArgument, fmt::format("{} line {}: {}", file.string(), i + 1,
                                                           checkpoint.error().message()));
    }
    out.push_back({static_cast<int>(i + 1), std::move(*checkpoint)});
  }
  return out;
}

}  // namespace fabu::coordinator
