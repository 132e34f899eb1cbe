// A TLS stream that holds no buffers while idle.
//
// TlsStream runs OpenSSL directly on a non-blocking TCP socket: the SSL object
// reads and writes the socket itself (through a minimal BIO on the fd, with
// MSG_NOSIGNAL), and when OpenSSL wants to read or write more the stream waits
// for readiness with socket.async_wait. OpenSSL reads ahead (one recv takes
// all that has arrived), which is safe because every read asks SSL_read
// before it waits for the socket. With SSL_MODE_RELEASE_BUFFERS OpenSSL
// frees its record buffers whenever nothing is pending, so an idle connection
// (a long poll, a keep-alive between requests) costs the SSL object and this
// stream's small state, a few KiB. Asio's ssl::stream, by contrast, keeps two
// 17 KiB buffers (stream_core) and an OpenSSL BIO pair of two more for the
// connection's whole life; neither size is configurable in Boost 1.74, and
// every record passes through those buffers once more.
//
// The coordinator's server uses it on accepted connections; fabu-loadgen, on
// the client side, on its connected ones (Role::kClient): its simulated
// agents share the coordinator's cores, so what they cost is taken from what
// is measured. A client's certificate checks are its SSL_CTX's (verify mode,
// trusted CAs); a session to resume is set on native_handle() before the
// handshake.
//
// It satisfies Beast's AsyncReadStream and AsyncWriteStream, so
// http::async_read / async_write work on it unchanged, and has the timeout
// model of beast::tcp_stream: expires_after() sets a deadline for the
// operations that follow; an operation still waiting on the socket at the
// deadline ends with beast::error::timeout, and so does every later one.
//
// Errors: a peer's close_notify reads as net::error::eof (Beast then says
// http::error::end_of_stream); a TCP close without it as
// net::ssl::error::stream_truncated; TLS failures in the SSL error category;
// socket failures as system errors; cancel() ends pending operations with
// net::error::operation_aborted.
//
// Ownership: owns the socket and the SSL object; the SSL_CTX must outlive it.
// Not movable (pending operations and the deadline timer refer to its state).
// Thread safety: none; use it from one thread (or strand), at most one read
// and one write in flight at a time, as with any Asio stream.
#pragma once

// clang-format off
#include <utility>  // before any Boost.Asio header: asio/awaitable.hpp needs it with g++ 12
// clang-format on

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <memory>
#include <type_traits>

namespace fabu::coordinator {

class TlsStream {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;
  // Which side of the handshake this end takes.
  enum class Role { kServer, kClient };

  // Takes an accepted (kServer) or connected (kClient) socket; the handshake
  // is async_handshake's.
  TlsStream(boost::asio::ip::tcp::socket socket, SSL_CTX* context, Role role = Role::kServer);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  executor_type get_executor() noexcept;
  SSL* native_handle() noexcept;

  // The deadline of the operations that follow (as beast::tcp_stream).
  void expires_after(std::chrono::steady_clock::duration timeout);
  void expires_never();
  // Pending operations end with operation_aborted; later ones may run.
  void cancel();
  // Closes the socket without a TLS close_notify; later operations fail.
  void close();

  // This end's side of the TLS handshake. Signature: void(error_code).
  template <typename Token>
  auto async_handshake(Token&& token) {
    return Run<void(boost::system::error_code)>(Kind::kHandshake, {}, std::forward<Token>(token));
  }

  // Sends close_notify and waits for the peer's. Signature: void(error_code).
  template <typename Token>
  auto async_shutdown(Token&& token) {
    return Run<void(boost::system::error_code)>(Kind::kShutdown, {}, std::forward<Token>(token));
  }

  // Reads decrypted bytes into the first non-empty buffer.
  // Signature: void(error_code, std::size_t).
  template <typename MutableBufferSequence, typename Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer buffer(*it);
      if (buffer.size() > 0) {
        return Run<void(boost::system::error_code, std::size_t)>(Kind::kRead, Span{buffer},
                                                                 std::forward<Token>(token));
      }
    }
    return Run<void(boost::system::error_code, std::size_t)>(Kind::kRead, {},
                                                             std::forward<Token>(token));
  }

  // Writes some of `buffers`. A sequence of small pieces (Beast's headers) is
  // gathered into one TLS record instead of one record per piece.
  // Signature: void(error_code, std::size_t).
  template <typename ConstBufferSequence, typename Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    Span span;
    std::unique_ptr<char[]> gathered;
    auto it = boost::asio::buffer_sequence_begin(buffers);
    const auto end = boost::asio::buffer_sequence_end(buffers);
    for (; it != end; ++it) {
      boost::asio::const_buffer buffer(*it);
      if (buffer.size() > 0) {
        span = Span{boost::asio::mutable_buffer(const_cast<void*>(buffer.data()), buffer.size())};
        break;
      }
    }
    if (span.size > 0 && span.size < kGatherLimit && it != end && std::next(it) != end) {
      const std::size_t total = std::min(boost::asio::buffer_size(buffers), kGatherLimit);
      if (total > span.size) {
        gathered.reset(new char[total]);  // not zeroed: overwritten at once
        boost::asio::buffer_copy(boost::asio::buffer(gathered.get(), total), buffers);
        span = Span{boost::asio::mutable_buffer(gathered.get(), total)};
      }
    }
    return Run<void(boost::system::error_code, std::size_t)>(
        Kind::kWrite, span, std::forward<Token>(token), std::move(gathered));
  }

 private:
  struct State;
  enum class Kind { kHandshake, kRead, kWrite, kShutdown };
  enum class Wait { kNone, kRead, kWrite };
  struct Span {
    Span() = default;
    explicit Span(boost::asio::mutable_buffer buffer)
        : data(static_cast<char*>(buffer.data())), size(buffer.size()) {}
    char* data = nullptr;
    std::size_t size = 0;
  };
  // One try of an operation: done (error or bytes), or wait for the socket.
  struct Attempt {
    boost::system::error_code error;
    std::size_t bytes = 0;
    Wait wait = Wait::kNone;
  };
  // One TLS record's worth of plaintext: the most gathered per write.
  static constexpr std::size_t kGatherLimit = 16 * 1024;

  static Attempt Try(State& state, Kind kind, Span span);
  static boost::asio::ip::tcp::socket& Socket(State& state);
  // Counts operations in flight; the deadline timer runs only while one waits.
  static void Begin(State& state);
  static void End(State& state);
  static void ArmDeadline(const std::shared_ptr<State>& state);
  // The error a wait that ended with `error` means (a timeout, when the deadline cancelled it).
  static boost::system::error_code WaitError(State& state, boost::system::error_code error);

  template <typename Signature>
  struct Op {
    std::shared_ptr<State> state;
    Kind kind;
    Span span;
    std::unique_ptr<char[]> gathered;  // owns span's bytes when gathered
    enum class Phase { kStart, kWaiting, kPosted } phase = Phase::kStart;
    Attempt result{};

    template <typename Self>
    void operator()(Self& self, boost::system::error_code error = {}) {
      if (phase == Phase::kPosted) return Complete(self);
      if (phase == Phase::kWaiting && error) {
        result = Attempt{WaitError(*state, error), 0, Wait::kNone};
        return Complete(self);
      }
      const bool first = phase == Phase::kStart;
      if (first) Begin(*state);
      result = Try(*state, kind, span);
      if (result.wait == Wait::kNone) {
        if (!first) return Complete(self);
        // Never complete inside the initiating call.
        phase = Phase::kPosted;
        return boost::asio::post(std::move(self));
      }
      phase = Phase::kWaiting;
      ArmDeadline(state);
      Socket(*state).async_wait(result.wait == Wait::kRead
                                    ? boost::asio::ip::tcp::socket::wait_read
                                    : boost::asio::ip::tcp::socket::wait_write,
                                std::move(self));
    }

    template <typename Self>
    void Complete(Self& self) {
      End(*state);
      gathered.reset();
      if constexpr (std::is_same_v<Signature, void(boost::system::error_code)>) {
        self.complete(result.error);
      } else {
        self.complete(result.error, result.bytes);
      }
    }
  };

  template <typename Signature, typename Token>
  auto Run(Kind kind, Span span, Token&& token, std::unique_ptr<char[]> gathered = nullptr) {
    return boost::asio::async_compose<Token, Signature>(
        Op<Signature>{state_, kind, span, std::move(gathered)}, token, Socket(*state_));
  }

  std::shared_ptr<State> state_;
};

}  // namespace fabu::coordinator
