#include "coordinator/tls/tls_stream.hpp"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <cstdint>

namespace fabu::coordinator {
namespace {

namespace net = boost::asio;
using ErrorCode = boost::system::error_code;

// A BIO that reads and writes a non-blocking socket: OpenSSL's socket BIO
// writes with write(2), which raises SIGPIPE on a closed peer; this one sends
// with MSG_NOSIGNAL. The BIO does not own the descriptor.
int FdOf(BIO* bio) { return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio))); }

int SocketWrite(BIO* bio, const char* data, std::size_t size, std::size_t* written) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::send(FdOf(bio), data, size, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) {
    *written = static_cast<std::size_t>(n);
    return 1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(bio);
  return 0;
}

int SocketRead(BIO* bio, char* data, std::size_t size, std::size_t* read) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::recv(FdOf(bio), data, size, 0);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    *read = static_cast<std::size_t>(n);
    return 1;
  }
  if (n == 0) {
    // OpenSSL asks BIO_eof to tell a TCP close from a retry.
    BIO_set_flags(bio, BIO_FLAGS_IN_EOF);
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    BIO_set_retry_read(bio);
  }
  return 0;
}

long SocketControl(BIO* bio, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    default:
      return 0;
  }
}

int SocketCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int SocketDestroy(BIO*) { return 1; }

BIO_METHOD* MakeSocketMethod() {
  BIO_METHOD* method =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fabu non-blocking socket");
  if (method == nullptr) return nullptr;
  BIO_meth_set_write_ex(method, SocketWrite);
  BIO_meth_set_read_ex(method, SocketRead);
  BIO_meth_set_ctrl(method, SocketControl);
  BIO_meth_set_create(method, SocketCreate);
  BIO_meth_set_destroy(method, SocketDestroy);
  return method;
}

// Made once, kept for the process's life.
BIO_METHOD* SocketMethod() {
  static BIO_METHOD* const method = MakeSocketMethod();
  return method;
}

}  // namespace

struct TlsStream::State {
  State(net::ip::tcp::socket s, SSL_CTX* context, Role role)
      : socket(std::move(s)), timer(socket.get_executor()), ssl(SSL_new(context)) {
    ErrorCode ignored;
    socket.non_blocking(true, ignored);
    BIO* bio = SocketMethod() != nullptr ? BIO_new(SocketMethod()) : nullptr;
    if (ssl == nullptr || bio == nullptr) {
      BIO_free(bio);
      SSL_free(ssl);
      ssl = nullptr;
      return;
    }
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(socket.native_handle())));
    SSL_set_bio(ssl, bio, bio);  // one reference, owned by ssl
    if (role == Role::kClient) {
      SSL_set_connect_state(ssl);
    } else {
      SSL_set_accept_state(ssl);
    }
    // Writes complete record by record (so a write_some returns what is out),
    // and a retried write may come from another address with the same bytes.
    // Record buffers are freed whenever nothing is pending.
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    // One recv(2) takes whatever has arrived, not a record's 5-byte header and
    // then its body. Safe here: a read always asks SSL_read before it waits
    // for the socket, so bytes OpenSSL holds are never waited for.
    SSL_set_read_ahead(ssl, 1);
  }
  ~State() { SSL_free(ssl); }

  net::ip::tcp::socket socket;
  net::steady_timer timer;
  SSL* ssl;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // The timer runs for `armed_for` while an operation waits; `generation`
  // tells a stale expiry from the current one.
  bool armed = false;
  std::chrono::steady_clock::time_point armed_for;
  std::uint64_t generation = 0;
  bool timed_out = false;
  int pending = 0;  // operations in flight
};

TlsStream::TlsStream(net::ip::tcp::socket socket, SSL_CTX* context, Role role)
    : state_(std::make_shared<State>(std::move(socket), context, role)) {}

TlsStream::~TlsStream() {
  ErrorCode ignored;
  state_->timer.cancel();
  state_->socket.close(ignored);
}

TlsStream::executor_type TlsStream::get_executor() noexcept {
  return state_->socket.get_executor();
}

SSL* TlsStream::native_handle() noexcept { return state_->ssl; }

void TlsStream::expires_after(std::chrono::steady_clock::duration timeout) {
  state_->deadline = std::chrono::steady_clock::now() + timeout;
}

void TlsStream::expires_never() { state_->deadline = std::chrono::steady_clock::time_point::max(); }

void TlsStream::cancel() {
  ErrorCode ignored;
  state_->socket.cancel(ignored);
}

void TlsStream::close() {
  ErrorCode ignored;
  state_->socket.close(ignored);
}

net::ip::tcp::socket& TlsStream::Socket(State& state) { return state.socket; }

void TlsStream::Begin(State& state) { ++state.pending; }

void TlsStream::End(State& state) {
  if (--state.pending > 0 || !state.armed) return;
  // Like beast::tcp_stream: the deadline bounds operations, not the time between them.
  state.armed = false;
  ++state.generation;
  state.timer.cancel();
}

void TlsStream::ArmDeadline(const std::shared_ptr<State>& state) {
  if (state->deadline == std::chrono::steady_clock::time_point::max()) return;
  if (state->armed && state->armed_for == state->deadline) return;
  state->armed = true;
  state->armed_for = state->deadline;
  const std::uint64_t generation = ++state->generation;
  state->timer.expires_at(state->deadline);
  state->timer.async_wait([weak = std::weak_ptr<State>(state), generation](const ErrorCode& error) {
    if (error) return;
    const auto locked = weak.lock();
    if (!locked || locked->generation != generation) return;
    locked->armed = false;
    locked->timed_out = true;
    ErrorCode ignored;
    locked->socket.cancel(ignored);
  });
}

ErrorCode TlsStream::WaitError(State& state, ErrorCode error) {
  if (state.timed_out) return boost::beast::error::timeout;
  return error;
}

TlsStream::Attempt TlsStream::Try(State& state, Kind kind, Span span) {
  if (state.timed_out) return {boost::beast::error::timeout};
  if (!state.socket.is_open()) return {net::error::bad_descriptor};
  if (state.ssl == nullptr) return {net::error::no_memory};
  SSL* ssl = state.ssl;

  // What an unsuccessful call `result` means: wait for the socket, or an error.
  auto failed = [ssl](int result, int saved_errno) -> Attempt {
    switch (SSL_get_error(ssl, result)) {
      case SSL_ERROR_WANT_READ:
        return {{}, 0, Wait::kRead};
      case SSL_ERROR_WANT_WRITE:
        return {{}, 0, Wait::kWrite};
      case SSL_ERROR_ZERO_RETURN:
        return {net::error::eof};  // the peer's close_notify
      case SSL_ERROR_SYSCALL: {
        if (const unsigned long code = ERR_get_error(); code != 0) {
          return {ErrorCode(static_cast<int>(code), net::error::get_ssl_category())};
        }
        if (saved_errno != 0) return {ErrorCode(saved_errno, boost::system::system_category())};
        return {net::ssl::error::stream_truncated};
      }
      default: {
        const unsigned long code = ERR_peek_last_error();
        ERR_clear_error();
        if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
            ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
          return {net::ssl::error::stream_truncated};  // TCP closed without close_notify
        }
        return {ErrorCode(static_cast<int>(code), net::error::get_ssl_category())};
      }
    }
  };

  ERR_clear_error();
  errno = 0;
  switch (kind) {
    case Kind::kHandshake: {
      const int result = SSL_do_handshake(ssl);
      if (result == 1) return {};
      return failed(result, errno);
    }
    case Kind::kRead: {
      if (span.size == 0) return {};
      std::size_t read = 0;
      const int result = SSL_read_ex(ssl, span.data, span.size, &read);
      if (result == 1) return {{}, read};
      return failed(result, errno);
    }
    case Kind::kWrite: {
      // As much as the socket takes now; a record OpenSSL could not send
      // whole is sent by the next call, which starts with the same bytes.
      std::size_t total = 0;
      while (total < span.size) {
        std::size_t written = 0;
        errno = 0;
        const int result = SSL_write_ex(ssl, span.data + total, span.size - total, &written);
        if (result == 1) {
          total += written;
          continue;
        }
        Attempt attempt = failed(result, errno);
        if (total > 0) return {{}, total};  // an error shows again on the next call
        return attempt;
      }
      return {{}, total};
    }
    case Kind::kShutdown: {
      int result = SSL_shutdown(ssl);
      // 0: our close_notify is out; a second call waits for the peer's.
      if (result == 0) {
        ERR_clear_error();
        errno = 0;
        result = SSL_shutdown(ssl);
      }
      if (result == 1) return {};
      if (result == 0) return {{}, 0, Wait::kRead};
      return failed(result, errno);
    }
  }
  return {net::error::invalid_argument};
}

}  // namespace fabu::coordinator
