// `fabu-coordinator backup` and `restore`: one archive holding what a data
// directory (common/data_dir.hpp) needs to run again, taken while the daemon
// runs, and put back only whole.
//
// The archive (a pax tar written and read with libarchive) holds, in order:
//   coordinator.db            a copy of the store made with SQLite's online
//                             backup API: one consistent snapshot, whatever
//                             the daemon writes meanwhile
//   config.json, ca.pem, ca.key, server.pem, server.key, secret.key,
//   audit-checkpoint.key/.pub, audit-checkpoints.jsonl (its whole lines,
//   read before the store is copied: each signs a head the copy holds), and
//   every other plain file of DIR but the store's -wal/-shm/-journal, the
//   port file and *.log
//   trusted/*                 the trusted publisher keys
//   packages/<id>.fabu        each package the snapshot's store references
//   manifest.json             fabu version, time, the store's schema version,
//                             and each member's path, size, mode and SHA-256
//   manifest.json.sha256      the manifest's own SHA-256
//
// restore reads it all into a directory beside DIR, checks every member
// against the manifest and the manifest against its checksum, and only then
// renames that directory to DIR: a damaged, partial or truncated backup is
// refused with DIR untouched.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "protocol/error.hpp"

namespace fabu::coordinator {

struct BackupOptions {
  std::filesystem::path data;
  std::filesystem::path out;
  std::string fabu_version;  // recorded in the manifest
};

struct BackupSummary {
  int files = 0;            // members, the manifest not counted
  std::uint64_t bytes = 0;  // their sizes summed
  int schema_version = 0;   // the store's
  // Files config.json names that the backup does not hold (outside the
  // data directory), one sentence each.
  std::vector<std::string> notes;
};

// Writes the backup of `options.data` to `options.out` (temp file beside it,
// fsync, rename, fsync of the directory): `out` is the whole backup or is
// left as it was. Refuses a data directory whose store is not SQLite (a
// PostgreSQL store is backed up with pg_dump).
Result<BackupSummary> Backup(const BackupOptions& options);

struct RestoreOptions {
  std::filesystem::path from;
  std::filesystem::path data;
  bool force = false;  // replace a data directory that holds a store
};

struct RestoreSummary {
  int files = 0;
  int schema_version = 0;
  std::string created;       // when the backup was taken (RFC 3339 UTC)
  std::string fabu_version;  // of the coordinator that took it
};

// Restores the backup `options.from` into `options.data`. Refuses, before
// touching the data directory, a backup that is damaged, partial or
// truncated (naming what is wrong), and a data directory that holds a store
// (or anything else) unless `force`. Directories get 0700, files 0600,
// package files 0400, as the daemon makes them.
Result<RestoreSummary> Restore(const RestoreOptions& options);

}  // namespace fabu::coordinator
