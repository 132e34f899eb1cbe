#include "coordinator/tls/server_ciphers.hpp"

#include <string>

namespace fabu::coordinator {

Result<void> UseServerCiphers(SSL_CTX* context) {
  if (SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) != 1) {
    return Fail(ErrorCode::kInternal, "OpenSSL refused TLS 1.2 as the lowest protocol version");
  }
  const std::string ciphers(kServerTls12Ciphers);
  if (SSL_CTX_set_cipher_list(context, ciphers.c_str()) != 1) {
    return Fail(ErrorCode::kInternal, "OpenSSL refused the TLS 1.2 cipher list " + ciphers);
  }
  SSL_CTX_set_options(context, SSL_OP_CIPHER_SERVER_PREFERENCE);
  return {};
}

}  // namespace fabu::coordinator
