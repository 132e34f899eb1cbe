#include "coordinator/packages/package_store.hpp"

#include <fmt/format.h>
#include <soci/soci.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>

#include "coordinator/common/clock.hpp"
#include "coordinator/common/digest.hpp"
#include "coordinator/store/dialect.hpp"
#include "packaging/package.hpp"
#include "packaging/sha256.hpp"
#include "platform/fs/files.hpp"

namespace fabu::coordinator {
namespace {

constexpr std::string_view kPackageColumns =
    "id, name, version, size, key_id, manifest, uploaded, uploaded_by";

struct PackageRow {
  StoredPackage package;
  long long size = 0;

  void BindInto(soci::statement& st) {
    st.exchange(soci::into(package.id));
    st.exchange(soci::into(package.name));
    st.exchange(soci::into(package.version));
    st.exchange(soci::into(size));
    st.exchange(soci::into(package.key_id));
    st.exchange(soci::into(package.manifest));
    st.exchange(soci::into(package.uploaded));
    st.exchange(soci::into(package.uploaded_by));
  }
  StoredPackage Take() {
    package.size = static_cast<std::uint64_t>(size);
    return package;
  }
};

}  // namespace

nlohmann::json StoredPackage::ToJson(bool with_manifest) const {
  nlohmann::json out = {
      {"id", id},         {"name", name},         {"version", version},        {"size", size},
      {"key_id", key_id}, {"uploaded", uploaded}, {"uploaded_by", uploaded_by}};
  if (with_manifest) {
    auto parsed = nlohmann::json::parse(manifest, nullptr, false);
    out["manifest"] = parsed.is_discarded() ? nlohmann::json(manifest) : parsed;
  }
  return out;
}

Result<packaging::TrustStore> LoadTrust(const DataDir& data,
                                        const std::vector<std::string>& trusted_keys) {
  packaging::TrustStore trust;
  std::error_code ec;
  if (std::filesystem::is_directory(data.trusted(), ec)) {
    for (const auto& entry : std::filesystem::directory_iterator(data.trusted(), ec)) {
      if (entry.path().extension() != ".pub") continue;
      if (auto ok = trust.AddFile(entry.path()); !ok) {
        return std::unexpected(ok.error().WithContext("trusted key " + entry.path().string()));
      }
    }
  }
  for (const std::string& file : trusted_keys) {
    std::filesystem::path path(file);
    if (path.is_relative()) path = data.root / path;
    if (auto ok = trust.AddFile(path); !ok) {
      return std::unexpected(ok.error().WithContext("config trusted_keys: " + path.string()));
    }
  }
  return trust;
}

Result<StoredPackage> FindPackage(soci::session& sql, std::string_view id) {
  PackageRow row;
  std::string key(id);
  soci::statement st(sql);
  st.alloc();
  st.prepare(fmt::format("SELECT {} FROM packages WHERE id = :id", kPackageColumns));
  row.BindInto(st);
  st.exchange(soci::use(key));
  st.define_and_bind();
  if (!st.execute(true)) return Fail(ErrorCode::kNotFound, fmt::format("no package {}", id));
  return row.Take();
}

std::vector<StoredPackage> ListPackages(soci::session& sql) {
  std::vector<StoredPackage> out;
  PackageRow row;
  soci::statement st(sql);
  st.alloc();
  st.prepare(fmt::format("SELECT {} FROM packages ORDER BY name, version, id", kPackageColumns));
  row.BindInto(st);
  st.define_and_bind();
  st.execute(false);
  while (st.fetch()) out.push_back(row.Take());
  return out;
}

namespace {

// kConflict naming the stored package when another content already has
// `package`'s name and version.
Result<void> CheckVersionFree(soci::session& sql, const StoredPackage& package) {
  std::string other_id;
  std::string name = package.name, version = package.version, id = package.id;
  sql << "SELECT id FROM packages WHERE name = :n AND version = :v AND id <> :i "
         "ORDER BY uploaded LIMIT 1",
      soci::use(name), soci::use(version), soci::use(id), soci::into(other_id);
  if (!sql.got_data()) return {};
  return Fail(ErrorCode::kConflict,
              fmt::format("{} {} is already stored as package {} with other content; a name and "
                          "version identify one content: build the change as a new version",
                          package.name, package.version, other_id));
}

}  // namespace

Result<UploadOutcome> StoreUploadedPackage(Store& store, const DataDir& data,
                                           const std::vector<std::string>& trusted_keys,
                                           const AuditOrigin& origin,
                                           const std::filesystem::path& upload) {
  auto trust = LoadTrust(data, trusted_keys);
  if (!trust) return std::unexpected(trust.error());
  if (trust->empty()) {
    return Fail(ErrorCode::kFailedPrecondition,
                "the coordinator trusts no publisher key yet: run `fabu-coordinator trust add "
                "--data DIR KEY.pub`");
  }
  auto verified = packaging::VerifyPackage(upload, *trust);
  if (!verified) {
    // The uploader knows the package by its own file name; the path of the
    // coordinator's temporary copy means nothing to them (the CLI names
    // their file).
    std::string message = verified.error().message();
    if (const std::string prefix = upload.string() + ": "; message.starts_with(prefix)) {
      message.erase(0, prefix.size());
    }
    return Fail(verified.error().code(), "package refused: " + message);
  }

  StoredPackage package;
  package.id = verified->package_sha256;
  package.name = verified->manifest.name;
  package.version = verified->manifest.version.ToString();
  package.size = verified->package_size;
  package.key_id = verified->manifest.key_id;
  package.manifest = verified->manifest_json;
  package.uploaded = store.clock().Utc();
  package.uploaded_by = origin.actor;

  auto existing = store.Read([&](soci::session& sql) { return FindPackage(sql, package.id); });
  if (existing) return UploadOutcome{*existing, false};
  if (existing.error().code() != ErrorCode::kNotFound) return std::unexpected(existing.error());
  // A name and version identify one content: refused before the file moves.
  auto same_version = store.Read(
      [&](soci::session& sql) -> Result<void> { return CheckVersionFree(sql, package); });
  if (!same_version) return std::unexpected(same_version.error());

  // The file goes into place first (immutable, durable), then the row: a
  // crash in between leaves a file without a row, which the next upload of
  // the same package simply adopts.
  const std::filesystem::path final_path = data.packages() / (package.id + ".fabu");
  if (::chmod(upload.c_str(), 0400) != 0) {
    return Fail(ErrorCode::kIo, "cannot make " + upload.string() + " read-only");
  }
  if (auto ok = platform::SyncFile(upload); !ok) return std::unexpected(ok.error());
  std::error_code ec;
  std::filesystem::rename(upload, final_path, ec);
  if (ec) {
    return Fail(ErrorCode::kIo,
                fmt::format("storing package as {}: {}", final_path.string(), ec.message()));
  }
  if (auto ok = platform::SyncDirectory(data.packages()); !ok) return std::unexpected(ok.error());

  // Every coordinator can serve it before anyone sees it (PostgreSQL).
  if (auto ok = StorePackageChunks(store, origin, package.id, final_path); !ok) {
    return std::unexpected(ok.error().WithContext("keeping the package in the database"));
  }
  auto inserted = store.Write(origin, [&](Transaction& tx) -> Result<bool> {
    if (FindPackage(tx.sql(), package.id)) return false;  // a concurrent identical upload won
    // `fabu-coordinator gc` removes files without a row while it holds the
    // store's write lock (daemon/retention.hpp): one that took this file
    // after it was put in place leaves nothing to record.
    if (std::error_code missing; !std::filesystem::exists(final_path, missing)) {
      return Fail(ErrorCode::kConflict,
                  fmt::format("package {} was removed by gc while it was being uploaded: "
                              "upload it again",
                              package.id));
    }
    // Again inside the transaction: a concurrent upload of other content
    // with this name and version may have committed since the read above.
    if (auto ok = CheckVersionFree(tx.sql(), package); !ok) return std::unexpected(ok.error());
    long long size = static_cast<long long>(package.size);
    tx.sql() << "INSERT INTO packages (" << kPackageColumns
             << ") VALUES (:id, :name, :version, :size, :key_id, :manifest, :uploaded, "
                ":uploaded_by)",
        soci::use(package.id), soci::use(package.name), soci::use(package.version), soci::use(size),
        soci::use(package.key_id), soci::use(package.manifest), soci::use(package.uploaded),
        soci::use(package.uploaded_by);
    AuditEvent event("package.upload", "package", package.id);
    event.after = package.ToJson();
    event.detail = {{"name", package.name}, {"version", package.version}};
    tx.Audit(event);
    return true;
  });
  if (!inserted) {
    // The file in place has no row and none will come: a conflict lost the race.
    if (inserted.error().code() == ErrorCode::kConflict) std::filesystem::remove(final_path, ec);
    return std::unexpected(inserted.error());
  }
  if (!*inserted) {
    auto stored = store.Read([&](soci::session& sql) { return FindPackage(sql, package.id); });
    if (!stored) return std::unexpected(stored.error());
    return UploadOutcome{*stored, false};
  }
  return UploadOutcome{package, true};
}

Result<std::vector<TrustedKey>> ListTrustedKeys(const DataDir& data,
                                                const std::vector<std::string>& trusted_keys) {
  std::vector<TrustedKey> keys;
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(data.trusted(), ec)) {
    for (const auto& entry : std::filesystem::directory_iterator(data.trusted(), ec)) {
      if (entry.path().extension() == ".pub") files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    auto key = packaging::PublicKey::FromPemFile(file);
    if (!key) return std::unexpected(key.error().WithContext("trusted key " + file.string()));
    keys.push_back(TrustedKey{key->key_id(), file, false});
  }
  for (const std::string& name : trusted_keys) {
    std::filesystem::path file(name);
    if (file.is_relative()) file = data.root / file;
    auto key = packaging::PublicKey::FromPemFile(file);
    if (!key)
      return std::unexpected(key.error().WithContext("config trusted_keys: " + file.string()));
    keys.push_back(TrustedKey{key->key_id(), file, true});
  }
  return keys;
}

Result<TrustedKey> UntrustPublisherKey(const DataDir& data,
                                       const std::vector<std::string>& trusted_keys,
                                       std::string_view key_id) {
  auto keys = ListTrustedKeys(data, trusted_keys);
  if (!keys) return std::unexpected(keys.error());
  std::optional<TrustedKey> in_dir;
  for (const TrustedKey& key : *keys) {
    if (key.key_id != key_id) continue;
    if (key.from_config) {
      return Fail(ErrorCode::kFailedPrecondition,
                  fmt::format("key {} is trusted through config.json's trusted_keys ({}): remove "
                              "it there, then restart the coordinator",
                              key_id, key.file.string()));
    }
    in_dir = key;
  }
  if (!in_dir) {
    return Fail(ErrorCode::kNotFound,
                fmt::format("no trusted publisher key has the id {} (`fabu-coordinator trust "
                            "list --data {}`)",
                            key_id, data.root.string()));
  }
  if (::unlink(in_dir->file.c_str()) != 0) {
    return Fail(ErrorCode::kIo,
                fmt::format("removing {}: {}", in_dir->file.string(), std::strerror(errno)));
  }
  if (auto synced = fabu::platform::SyncDirectory(data.trusted()); !synced) {
    return std::unexpected(synced.error());
  }
  return *in_dir;
}

Result<std::string> TrustPublisherKey(const DataDir& data, const std::filesystem::path& pem) {
  auto key = packaging::PublicKey::FromPemFile(pem);
  if (!key) return std::unexpected(key.error().WithContext(pem.string()));
  std::error_code ec;
  std::filesystem::create_directories(data.trusted(), ec);
  if (ec) return Fail(ErrorCode::kIo, "creating " + data.trusted().string() + ": " + ec.message());
  const auto target = data.trusted() / (key->key_id() + ".pub");
  if (auto ok = platform::WriteFileDurably(target, key->ToPem(), 0600); !ok) {
    return std::unexpected(ok.error());
  }
  return key->key_id();
}

namespace {

// One fetch of a package from the database at a time in this process.
std::mutex& FetchMutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace

Result<void> StorePackageChunks(Store& store, const AuditOrigin& origin, const std::string& id,
                                const std::filesystem::path& file) {
  if (store.backend() != StoreBackend::kPostgresql) return {};
  std::ifstream in(file, std::ios::binary);
  if (!in) return Fail(ErrorCode::kIo, fmt::format("cannot read {}", file.string()));
  std::string chunk(kChunkBytes, '\0');
  for (long long seq = 0;; ++seq) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got == 0) break;
    const std::string hex = packaging::ToHex(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(chunk.data()), got));
    auto written = store.Write(origin, [&](Transaction& tx) -> Result<void> {
      tx.sql() << "INSERT INTO package_chunks (package_id, seq, data) VALUES (:id, :seq, "
               << HexToBytesSql("hex") << ") ON CONFLICT (package_id, seq) DO NOTHING",
          soci::use(id), soci::use(seq), soci::use(hex);
      return {};
    });
    if (!written) return std::unexpected(written.error());
    if (got < chunk.size()) break;
  }
  if (in.bad()) return Fail(ErrorCode::kIo, fmt::format("reading {}", file.string()));
  return {};
}

Result<std::filesystem::path> LocalPackageFile(Store& store, const DataDir& data,
                                               const std::string& id) {
  const std::filesystem::path path = data.packages() / (id + ".fabu");
  std::error_code ec;
  if (std::filesystem::exists(path, ec) || store.backend() != StoreBackend::kPostgresql) {
    return path;
  }
  std::lock_guard lock(FetchMutex());
  if (std::filesystem::exists(path, ec)) return path;  // fetched while this one waited
  auto count = store.Read([&](soci::session& sql) -> Result<long long> {
    long long n = 0;
    sql << "SELECT COUNT(*) FROM package_chunks WHERE package_id = :id", soci::use(id),
        soci::into(n);
    return n;
  });
  if (!count) return std::unexpected(count.error());
  if (*count == 0) {
    return Fail(ErrorCode::kNotFound, fmt::format("package {} is neither in {} nor in the database",
                                                  id, data.packages().string()));
  }
  auto random = RandomHex(8);
  const std::filesystem::path part =
      data.tmp() / fmt::format("fetch-{}-{}", id, random ? *random : "0");
  struct RemovePart {
    const std::filesystem::path& path;
    ~RemovePart() {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  } remove_part{part};
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  if (!out) return Fail(ErrorCode::kIo, fmt::format("cannot create {}", part.string()));
  packaging::Sha256 hash;
  for (long long seq = 0; seq < *count; ++seq) {
    auto hex = store.Read([&](soci::session& sql) -> Result<std::string> {
      std::string text;
      soci::indicator found = soci::i_null;
      sql << "SELECT " << BytesToHexSql("data")
          << " FROM package_chunks WHERE package_id = :id AND seq = :seq",
          soci::use(id), soci::use(seq), soci::into(text, found);
      if (!sql.got_data() || found != soci::i_ok) {
        return Fail(
            ErrorCode::kNotFound,
            fmt::format("package {}: chunk {} of {} is missing in the database", id, seq, *count));
      }
      return text;
    });
    if (!hex) return std::unexpected(hex.error());
    const std::optional<std::vector<std::uint8_t>> bytes = packaging::FromHex(*hex);
    if (!bytes) {
      return Fail(ErrorCode::kIntegrity,
                  fmt::format("package {}: chunk {} in the database is not hex", id, seq));
    }
    const std::string_view chunk(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    hash.Update(chunk);
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  }
  out.close();
  if (!out) return Fail(ErrorCode::kIo, fmt::format("writing {}", part.string()));
  if (const std::string got = hash.FinishHex(); got != id) {
    return Fail(ErrorCode::kIntegrity,
                fmt::format("package {} in the database hashes to {}: not kept", id, got));
  }
  if (::chmod(part.c_str(), 0400) != 0) {
    return Fail(ErrorCode::kIo, "cannot make " + part.string() + " read-only");
  }
  if (auto ok = platform::SyncFile(part); !ok) return std::unexpected(ok.error());
  std::filesystem::rename(part, path, ec);
  if (ec) {
    return Fail(ErrorCode::kIo,
                fmt::format("storing package as {}: {}", path.string(), ec.message()));
  }
  if (auto ok = platform::SyncDirectory(data.packages()); !ok) return std::unexpected(ok.error());
  return path;
}

}  // namespace fabu::coordinator
