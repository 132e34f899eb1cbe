// The layout of a coordinator's data directory (made by `fabu-coordinator
// init`, used by `serve` and `trust add`). A plain value; no I/O.
//
//   DIR/coordinator.db     the SQLite store (plus -wal/-shm while open)
//   DIR/config.json        the configuration (see config.hpp)
//   DIR/ca.pem, ca.key     the private CA (key 0600); clients pin ca.pem
//   DIR/server.pem, .key   the server certificate chain and key (0600)
//   DIR/trusted/           publisher public keys (*.pub) packages must be signed by
//   DIR/packages/          verified packages, <sha256>.fabu, read-only
//   DIR/tmp/               uploads in flight
//   DIR/coordinator.port   the port `serve` listens on, written once listening
//   DIR/secret.key         the key sealing secrets in the store (secret_box.hpp)
//   DIR/audit-checkpoint.key, .pub   the Ed25519 key signing audit checkpoints
//   DIR/audit-checkpoints.jsonl      signed checkpoints of the audit chain,
//                                    appended, never written by the store
//
// The directory and its subdirectories are 0700, every file in it 0600 (or
// 0400 when read-only): the daemon runs with umask 077.
#pragma once

#include <filesystem>

namespace fabu::coordinator {

struct DataDir {
  std::filesystem::path root;

  std::filesystem::path store() const { return root / "coordinator.db"; }
  std::filesystem::path config() const { return root / "config.json"; }
  std::filesystem::path ca_cert() const { return root / "ca.pem"; }
  std::filesystem::path ca_key() const { return root / "ca.key"; }
  std::filesystem::path server_cert() const { return root / "server.pem"; }
  std::filesystem::path server_key() const { return root / "server.key"; }
  std::filesystem::path trusted() const { return root / "trusted"; }
  std::filesystem::path packages() const { return root / "packages"; }
  std::filesystem::path tmp() const { return root / "tmp"; }
  std::filesystem::path port_file() const { return root / "coordinator.port"; }
  std::filesystem::path secret_key() const { return root / "secret.key"; }
  // PREFIX of PREFIX.key / PREFIX.pub (packaging/keys.hpp).
  std::filesystem::path checkpoint_key_prefix() const { return root / "audit-checkpoint"; }
  std::filesystem::path checkpoints() const { return root / "audit-checkpoints.jsonl"; }
};

}  // namespace fabu::coordinator
