// The content-addressed, immutable package store of the coordinator (seed
// §1.3).
//
// An uploaded package is verified with the packaging library against the
// publisher keys the coordinator trusts (DIR/trusted/*.pub plus the config's
// trusted_keys, read afresh for every upload so `trust add` needs no
// restart). A verified package is kept as DIR/packages/<sha256>.fabu,
// read-only, and recorded in the `packages` table with its manifest and an
// audit entry, in one transaction. A refused package leaves nothing behind.
// Uploading the same bytes again changes nothing and returns the same id.
//
// Functions block (hashing, fsync, SQLite): call them from worker threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/common/data_dir.hpp"
#include "coordinator/store/store.hpp"
#include "packaging/keys.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

struct StoredPackage {
  std::string id;  // SHA-256 of the package file
  std::string name;
  std::string version;
  std::uint64_t size = 0;
  std::string key_id;
  std::string manifest;  // the signed manifest.json
  std::string uploaded;
  std::string uploaded_by;

  // `with_manifest` adds the parsed manifest.
  nlohmann::json ToJson(bool with_manifest = false) const;
};

// The publisher keys the coordinator trusts now.
Result<packaging::TrustStore> LoadTrust(const DataDir& data,
                                        const std::vector<std::string>& trusted_keys);

struct UploadOutcome {
  StoredPackage package;
  bool created = false;  // false: the same package was already stored
};

// Verifies `upload` (a temp file, consumed: moved into the store or left for
// the caller to remove) and stores it.
Result<UploadOutcome> StoreUploadedPackage(Store& store, const DataDir& data,
                                           const std::vector<std::string>& trusted_keys,
                                           const AuditOrigin& origin,
                                           const std::filesystem::path& upload);

// Several coordinators on one PostgreSQL database (docs/ha.md) each serve
// every package: the database holds each package too, in chunks of
// kChunkBytes (table package_chunks), written before the package's row, so a
// package is listed (and can be assigned) only once every coordinator can
// serve it. A coordinator asked for a package it does not have yet fetches
// the chunks once, checks them against the id (the SHA-256) and keeps the
// file in DIR/packages like an upload of its own; from then on it serves it
// with Range like any other. With SQLite (one coordinator) the file is the
// only copy and no chunk is written.
inline constexpr std::size_t kChunkBytes = 1 << 20;

// Writes `file`'s chunks for package `id` (PostgreSQL; nothing on SQLite),
// one transaction per chunk so that a large package does not hold the
// writers' lock; a chunk already there is kept.
Result<void> StorePackageChunks(Store& store, const AuditOrigin& origin, const std::string& id,
                                const std::filesystem::path& file);

// The package's file in DIR/packages: the one there, or, on PostgreSQL,
// fetched from its chunks (one fetch at a time per coordinator; a request
// for a package being fetched waits for it). kNotFound when the chunks are
// missing, kIntegrity when they do not hash to `id` (nothing is kept then).
Result<std::filesystem::path> LocalPackageFile(Store& store, const DataDir& data,
                                               const std::string& id);

Result<StoredPackage> FindPackage(soci::session& sql, std::string_view id);
std::vector<StoredPackage> ListPackages(soci::session& sql);

// Adds a publisher key file to DIR/trusted/ (as <key id>.pub); returns the
// key id. kInvalidArgument when the file is not an Ed25519 public key PEM.
Result<std::string> TrustPublisherKey(const DataDir& data, const std::filesystem::path& pem);

// A publisher key the coordinator trusts, and where it comes from.
struct TrustedKey {
  std::string key_id;
  std::filesystem::path file;
  bool from_config = false;  // listed in config.json's trusted_keys
};

// Every trusted key: DIR/trusted/*.pub, then config.json's trusted_keys (the
// same files LoadTrust reads), in that order.
Result<std::vector<TrustedKey>> ListTrustedKeys(const DataDir& data,
                                                const std::vector<std::string>& trusted_keys);

// Removes DIR/trusted/<key_id>.pub: uploads signed by that key are refused
// from the next one on (LoadTrust reads the keys afresh for each). Packages
// already stored stay. kNotFound when no such key is trusted there,
// kFailedPrecondition when it comes from config.json (remove it there).
Result<TrustedKey> UntrustPublisherKey(const DataDir& data,
                                       const std::vector<std::string>& trusted_keys,
                                       std::string_view key_id);

}  // namespace fabu::coordinator
