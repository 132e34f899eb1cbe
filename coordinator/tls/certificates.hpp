// The coordinator's private CA and server certificate (OpenSSL 3 X.509).
//
// CreateCertificates makes an EC P-256 CA (10 years) and a server
// certificate (2 years) signed by it, valid for `hostnames` plus
// "localhost", 127.0.0.1 and ::1, with serverAuth usage. Files:
//   ca.pem, ca.key, server.pem (server cert then CA), server.key, all 0600
//   (the data directory is private; hand ca.pem to clients by copying it)
// at the paths of `data`. Keys are written with O_EXCL: nothing is
// overwritten. Clients pin ca.pem. Thread-safe (no shared state).
#pragma once

#include <string>
#include <vector>

#include "coordinator/common/data_dir.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

Result<void> CreateCertificates(const DataDir& data, const std::vector<std::string>& hostnames);

// A server certificate for `hostnames` signed by the CA already in `data`
// (ca.pem, ca.key): a coordinator joining an installation (docs/ha.md).
// Refuses (kInvalidArgument) a ca.key that is not ca.pem's key.
Result<void> CreateServerCertificate(const DataDir& data,
                                     const std::vector<std::string>& hostnames);

}  // namespace fabu::coordinator
