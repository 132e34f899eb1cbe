// The coordinator's HTTPS server (Boost.Beast on Asio, OpenSSL).
//
// HTTPS only: a connection that does not complete a TLS handshake within the
// handshake timeout is closed, so plain HTTP gets no service. Requests are
// parsed with Beast; for each one the server
//   1. matches a Route (router.hpp), answering 404 / 400 when none does;
//   2. authenticates the bearer token (401) and checks the route's roles
//      (403 naming the role needed) — before reading any body, so an
//      unauthorized upload is refused without receiving it; agent routes
//      authenticate the token as a host credential instead (user tokens
//      fail there, and host credentials fail on user routes: 401), first
//      through the AgentLookup on the I/O thread (a credential known good),
//      else through the AgentAuthenticator on the pool;
//   3. reads the body: JSON routes under the JSON limit (413 beyond it),
//      upload routes streamed to a temp file under the upload limit;
//   4. runs the handler on the worker pool (an Inline route's, with a small
//      body, on the I/O thread) and writes its JSON response with
//      an X-Request-Id header (a fresh id per request, also in the audit);
//      a Response::Later is waited for on a timer, woken by its Deferred;
//      a Response::Wait is honoured with a steady_timer on the I/O thread,
//      woken through the WakeupHub (no worker thread is held while waiting);
//      a Response::File is streamed from disk in chunks read on the pool.
// Every read and write has a timeout; "Expect: 100-continue" is honoured.
//
// Limits that protect the server, each past its bound answered
// 503 with "Retry-After: retry_after" (downloads: less, below) and the
// connection closed:
//   - time: the TLS handshake within handshake_timeout, each request header
//     whole within idle_timeout of the previous answer, each piece of a body
//     read or write within io_timeout (a slow or silent peer is dropped);
//   - connections: a connection accepted while more than max_connections are
//     open is served for people's (management and public) requests only; an
//     agent request on it (a path `agent_traffic` says is agents') gets the 503. So
//     agents never take the last reserved_connections slots, and `fabu` keeps
//     working when a fleet storms in. A connection accepted while more than
//     max_connections + reserved_connections are open is closed at once,
//     before TLS (nothing can be said to it without a handshake);
//   - downloads: a package download (Response::File) while max_downloads are
//     being written waits in a queue, first come first served, and is written
//     as soon as a download ends (download_queue.cpp). The queue holds the
//     request (its connection is open anyway), not the file: a file is opened
//     only once it has a slot, so memory and descriptors stay bounded by
//     max_downloads. Past download_queue waiting, or after download_wait in
//     the queue, it gets the 503 with a Retry-After of when its turn should
//     come (the downloads' average time per round of max_downloads, from 1 s
//     to retry_after).
// Answers first: while the WakeupHub is held (a wave being assigned in
// parts, SweepDeployments), a connection whose last request `hold_next` names
// reads its next one only when the hold ends or after hold_limit
// (wakeup_hub.hpp). Which requests those are is the daemon's policy
// (daemon/daemon.cpp); a connection's first request is never held. A
// Response::Wait whose deadline passes while the hub is held waits once more,
// until the hold ends (at most hold_limit): its host may be in a part still
// to come.
// Run() raises the soft RLIMIT_NOFILE to the hard limit and warns when that
// is below max_connections + reserved_connections.
//
// Memory per connection (goal: ≤ 32 KiB per idle long poll): TLS runs on
// TlsStream (coordinator/tls/tls_stream.hpp), OpenSSL on the non-blocking
// socket with SSL_MODE_RELEASE_BUFFERS, so an idle connection holds no record
// buffers, only OpenSSL's state (~14 KiB after the handshake). A request is
// read and routed in one coroutine (Serve) and its handler run in another
// (Answer): while a Response::Wait parks the connection, only the session's
// frame, the RequestContext and the handler's frame and timer are held; the
// body parsers are gone and the read buffer is shrunk to what it holds.
// docs/benchmarks.md ("Scale", "What a held connection costs") has the
// measured figure and its breakdown.
//
// Threads: one I/O thread runs every connection's coroutine (so connection
// bookkeeping needs no locks); blocking work (authentication, handlers) runs
// on a thread pool and resumes on the I/O thread. Agents' requests use a pool
// of `workers` threads; everyone else's a pool of kPeopleWorkers of its own,
// so a wave of 5,000 agents' polls, whose handlers wait for the store, never
// queues a person's request behind it (the store does the same for the
// reading sessions: Store::ReadFor).
//
// Other work may share these threads (the daemon's periodic work,
// daemon/periodic.hpp): io_executor(), pool_executor() and OnShutdown().
//
// Run() blocks until SIGTERM or SIGINT: it then stops accepting, closes idle
// connections, answers waiting long polls at once, calls the OnShutdown
// callbacks (periodic work stops), lets
// in-flight requests finish for up to the shutdown timeout, joins the pool
// and returns. A second signal ends it at once.
#pragma once

// clang-format off
#include <utility>  // before any Boost.Asio header: asio/awaitable.hpp needs it with g++ 12
// clang-format on

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "coordinator/auth/users.hpp"
#include "coordinator/common/peer_certificate.hpp"
#include "coordinator/common/server_load.hpp"
#include "coordinator/common/wakeup_hub.hpp"
#include "coordinator/server/router.hpp"
#include "protocol/error.hpp"

namespace fabu::coordinator {

struct ServerSettings {
  std::string host = "127.0.0.1";           // an IP address
  std::uint16_t port = 8443;                // 0: any free port
  std::filesystem::path certificate_chain;  // PEM: server cert then CA
  std::filesystem::path private_key;        // PEM
  // PEM: the CA whose client certificates are asked for (agents' mutual TLS).
  // The handshake asks for one but goes on without it (people, curl and
  // browsers need none); what was presented is given to the agent
  // authenticator of each agent request. Empty: none is asked for.
  std::filesystem::path client_ca;
  std::filesystem::path upload_dir;  // temp files of streamed uploads
  std::filesystem::path port_file;   // written with the port once listening; may be empty
  std::uint64_t json_body_limit = 1 << 20;
  std::uint64_t upload_limit = std::uint64_t{4} << 30;
  std::chrono::seconds handshake_timeout{10};
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds io_timeout{60};
  std::chrono::seconds shutdown_timeout{10};
  int workers = 4;  // the agents' pool
  std::size_t max_connections = 30000;
  std::size_t reserved_connections = 64;
  std::size_t max_downloads = 64;
  std::size_t download_queue = 4096;       // downloads waiting for a slot
  std::chrono::seconds download_wait{20};  // the longest one waits (0: none does)
  std::chrono::seconds retry_after{10};
  // The longest an agent's next request waits while a wave is being
  // assigned in parts (WakeupHub holds); zero: never waits.
  std::chrono::milliseconds hold_limit{2000};
  // Agents' traffic, which the connection cap applies to: true for the path
  // of an agent's request (the daemon gives the agent API's, api_context.hpp).
  // Empty: no request is agents'.
  std::function<bool(std::string_view path)> agent_traffic;
  // The wave hold's policy: whether the connection that has just answered
  // `ctx` reads its next request only once the WakeupHub's hold ends (at most
  // hold_limit). `ran_out`: `ctx` was a long poll that ended by its deadline.
  // Empty: no connection is held.
  std::function<bool(const RequestContext& ctx, bool ran_out)> hold_next;
  // Called on the I/O thread after each answer is written (or failed to
  // be): its request (ctx.route "" when no route matched), status and the
  // time since its first byte. Must not block. Empty: nothing.
  std::function<void(const RequestContext& ctx, int status,
                     std::chrono::steady_clock::duration took)>
      observe;
  // The console's sessions (auth/sessions.hpp): the principal, with its
  // `session` set, of the session whose cookie carries `id` (runs on the
  // worker pool). A request without an Authorization header is
  // authenticated by its session cookie through this; one that changes
  // something must also carry the session's CSRF token (X-CSRF-Token) and,
  // when its browser says where it comes from (Origin, Sec-Fetch-Site),
  // come from this coordinator. Empty: session cookies are not accepted.
  std::function<Result<Principal>(std::string_view id)> authenticate_session;
  // Where the server publishes its connections, downloads and bytes sent
  // (common/server_load.hpp); may be null.
  ServerLoad* load = nullptr;
};

// Resolves a bearer token to a user (runs on the worker pool).
using Authenticator = std::function<Result<Principal>(std::string_view token)>;

// Resolves an agent credential, with the client certificate the request's
// connection presented, to the name of its host (runs on the worker pool):
// kUnauthenticated for an unknown credential, a removed host, or a
// certificate that is not the host's (hosts/agent_certificates.hpp). Asked
// for every request, not once per connection: a resumed TLS session skips
// the handshake's checks.
using AgentAuthenticator =
    std::function<Result<std::string>(std::string_view credential, const PeerCertificate& peer)>;

// Looks an agent credential up without blocking (runs on the I/O thread): the
// answer for a credential known good (the host, or why its certificate is
// refused), or nullopt to ask the AgentAuthenticator on the worker pool.
using AgentLookup = std::function<std::optional<Result<std::string>>(std::string_view credential,
                                                                     const PeerCertificate& peer)>;

class HttpServer {
 public:
  // `authenticate_agent` may be empty (agent routes then answer 401);
  // `wakeups` may be null (Response::Wait then answers its body at once).
  HttpServer(ServerSettings settings, const Router& router, Authenticator authenticate,
             AgentAuthenticator authenticate_agent = {}, WakeupHub* wakeups = nullptr,
             AgentLookup lookup_agent = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads the certificate, binds, prints "listening on https://HOST:PORT" on
  // stdout, writes the port file, and serves until a signal. Returns an Error
  // when it cannot start (certificate, address in use); kIo then.
  Result<void> Run();

  // The server's threads, for work that shares them: the I/O thread (its
  // io_context runs inside Run) and the worker pool.
  boost::asio::io_context::executor_type io_executor();
  boost::asio::thread_pool::executor_type pool_executor();
  // Calls `stop` on the I/O thread when shutdown begins (the first signal),
  // so work on io_executor() ends and Run can return. Call before Run.
  void OnShutdown(std::function<void()> stop);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabu::coordinator
