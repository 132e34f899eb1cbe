// What the coordinator's TLS listener offers (docs/coordinator.md, TLS).
//
// TLS 1.2 and 1.3 only. Under TLS 1.2 only ECDHE key exchange with an AEAD
// cipher: AES-GCM or ChaCha20-Poly1305 (forward secrecy, no CBC with its
// padding-oracle history, no static RSA). TLS 1.3's suites are all AEAD and
// stay OpenSSL's defaults. The server's order of preference wins.
#pragma once

#include <openssl/ssl.h>

#include <string_view>

#include "protocol/error.hpp"

namespace fabu::coordinator {

// OpenSSL cipher list for TLS 1.2 (the RSA forms serve a certificate with an
// RSA key; the coordinator's own is EC P-256).
inline constexpr std::string_view kServerTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";

// Sets the protocol floor (TLS 1.2), kServerTls12Ciphers and server
// preference on `context`; kInternal when OpenSSL refuses them.
Result<void> UseServerCiphers(SSL_CTX* context);

}  // namespace fabu::coordinator
