// The listener of HttpServer (http_server.hpp): the TLS context, the socket
// bound and accepting, the signals and the shutdown. What a connection does
// is in connection.cpp.
#include "coordinator/server/http_server.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/redirect_error.hpp>
#include <csignal>
#include <cstdio>

#include "coordinator/server/server_internal.hpp"
#include "coordinator/tls/client_certificates.hpp"
#include "coordinator/tls/server_ciphers.hpp"
#include "platform/fs/files.hpp"

namespace fabu::coordinator {
namespace server_internal {

std::uint64_t RandomStart() {
  std::uint64_t start = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&start), sizeof start) != 1) return 0;
  return start;
}

}  // namespace server_internal

namespace {

// Raises the soft limit on open files to the hard one; returns the limit.
rlim_t RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_cur;
  }
  return limit.rlim_cur;
}

}  // namespace

HttpServer::HttpServer(ServerSettings settings, const Router& router, Authenticator authenticate,
                       AgentAuthenticator authenticate_agent, WakeupHub* wakeups,
                       AgentLookup lookup_agent)
    : impl_(std::make_unique<Impl>(std::move(settings), router, std::move(authenticate),
                                   std::move(authenticate_agent), wakeups,
                                   std::move(lookup_agent))) {}

HttpServer::~HttpServer() = default;

Result<void> HttpServer::Run() { return impl_->Run(); }

boost::asio::io_context::executor_type HttpServer::io_executor() { return impl_->io_executor(); }

boost::asio::thread_pool::executor_type HttpServer::pool_executor() {
  return impl_->pool_executor();
}

void HttpServer::OnShutdown(std::function<void()> stop) { impl_->OnShutdown(std::move(stop)); }

Result<void> HttpServer::Impl::Run() {
  try {
    ssl_.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                     net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                     net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
    if (auto ok = UseServerCiphers(ssl_.native_handle()); !ok) return ok;
    // OpenSSL frees a connection's record buffers (~34 KiB) while it is idle:
    // most of our connections are long polls, idle for their whole wait.
    SSL_CTX_set_mode(ssl_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    // TLS 1.3 session tickets (stateless, on by default) let a reconnecting agent
    // resume without the certificate signature and its verification. A client keeps
    // one session, so one ticket per handshake, not OpenSSL's default two (each one
    // encrypted and written on every handshake).
    SSL_CTX_set_num_tickets(ssl_.native_handle(), 1);
    ssl_.use_certificate_chain_file(settings_.certificate_chain.string());
    ssl_.use_private_key_file(settings_.private_key.string(), net::ssl::context::pem);
    if (!settings_.client_ca.empty()) {
      if (auto ok = AskForClientCertificates(ssl_.native_handle(), settings_.client_ca); !ok) {
        return ok;
      }
    }
  } catch (const boost::system::system_error& e) {
    return Fail(ErrorCode::kIo, fmt::format("loading the TLS certificate {} and key {}: {}",
                                            settings_.certificate_chain.string(),
                                            settings_.private_key.string(), e.what()));
  }

  boost::system::error_code ec;
  const auto address = net::ip::make_address(settings_.host, ec);
  if (ec) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("listen address \"{}\" is not an IP address", settings_.host));
  }
  const tcp::endpoint endpoint(address, settings_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Fail(ErrorCode::kIo, fmt::format("cannot listen on {}:{}: {}", settings_.host,
                                            settings_.port, ec.message()));
  }
  const std::uint16_t port = acceptor_.local_endpoint().port();
  const rlim_t open_files = RaiseOpenFileLimit();
  const std::size_t wanted = settings_.max_connections + settings_.reserved_connections + 64;
  if (open_files != 0 && open_files != RLIM_INFINITY && open_files < wanted) {
    spdlog::warn(
        "the open-file limit ({}) is below max_connections + reserved_connections ({}): "
        "connections past it are refused by the OS (raise LimitNOFILE / ulimit -n)",
        open_files, wanted - 64);
  }
  const std::string host = address.is_v6() ? fmt::format("[{}]", settings_.host) : settings_.host;

  // A peer that vanishes mid-write must not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  signals_.async_wait([this](const boost::system::error_code& error, int signal_number) {
    if (!error) OnSignal(signal_number);
  });
  net::co_spawn(io_, Accept(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("accept loop ended: {}", ex.what());
    }
  });

  if (!settings_.port_file.empty()) {
    if (auto ok = platform::WriteFileDurably(settings_.port_file, fmt::format("{}\n", port), 0600);
        !ok) {
      return std::unexpected(ok.error());
    }
  }
  fmt::print("listening on https://{}:{}\n", host, port);
  std::fflush(stdout);
  spdlog::info("listening on https://{}:{} ({} workers)", host, port, settings_.workers);
  // Under systemd (Type=notify) the unit becomes active only now; elsewhere
  // sd_notify does nothing.
  sd_notify(0, "READY=1");

  io_.run();
  sd_notify(0, "STOPPING=1");
  pool_.join();
  people_pool_.join();
  if (!settings_.port_file.empty()) {
    std::error_code ignored;
    std::filesystem::remove(settings_.port_file, ignored);
  }
  spdlog::info("stopped");
  return {};
}

void HttpServer::Impl::OnSignal(int signal_number) {
  spdlog::info("signal {}: no new connections; finishing {} open connection(s)", signal_number,
               connections_.size());
  stopping_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& [id, connection] : connections_) {
    // Idle connections wait for a handshake or a request header: end them now.
    // Busy ones finish their request and then close (stopping_).
    if (!connection->busy) connection->stream->cancel();
  }
  // Long polls answer now; the work sharing our threads stops.
  for (net::steady_timer* timer : timers_) timer->cancel();
  for (const auto& stop : on_shutdown_) stop();
  signals_.async_wait([this](const boost::system::error_code& error, int second) {
    if (error) return;
    spdlog::warn("signal {} again: exiting now", second);
    io_.stop();
  });
  grace_.expires_after(settings_.shutdown_timeout);
  grace_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    spdlog::warn("{} request(s) still running after {}s: closing them", connections_.size(),
                 settings_.shutdown_timeout.count());
    io_.stop();
  });
  MaybeFinish();
}

void HttpServer::Impl::MaybeFinish() {
  if (!stopping_ || !connections_.empty()) return;
  grace_.cancel();
  signals_.cancel();
}

net::awaitable<void> HttpServer::Impl::Accept() {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(net::redirect_error(net::use_awaitable, ec));
    if (stopping_) co_return;
    if (ec) {
      spdlog::warn("accept: {}", ec.message());
      // Back off a little so a persistent error (EMFILE) does not spin.
      net::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
      continue;
    }
    net::co_spawn(io_, Session(std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("connection ended by an exception: {}", ex.what());
      }
    });
  }
}

}  // namespace fabu::coordinator
