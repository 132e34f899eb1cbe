#include "tests/support/http_receiver.hpp"

#include <utility>
// <utility> before Boost.Asio (STYLE.md).
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace fabu::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct HttpReceiver::Impl {
  net::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  mutable std::mutex mutex;
  Answer answer = [](const ReceivedRequest&) { return std::pair<int, std::string>(200, "{}"); };
  std::vector<ReceivedRequest> received;

  net::awaitable<void> Session(tcp::socket socket) {
    try {
      beast::flat_buffer buffer;
      for (;;) {
        http::request<http::string_body> request;
        co_await http::async_read(socket, buffer, request, net::use_awaitable);
        ReceivedRequest r;
        r.method = std::string(request.method_string());
        r.target = std::string(request.target());
        for (const auto& field : request) {
          std::string name(field.name_string());
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          r.headers[name] = std::string(field.value());
        }
        r.body = request.body();
        Answer current;
        {
          std::lock_guard lock(mutex);
          current = answer;
        }
        auto [status, body] = current(r);
        r.status = status;
        {
          std::lock_guard lock(mutex);
          received.push_back(r);
        }
        http::response<http::string_body> response{static_cast<http::status>(status),
                                                   request.version()};
        response.set(http::field::content_type, "application/json");
        response.keep_alive(request.keep_alive());
        response.body() = body;
        response.prepare_payload();
        co_await http::async_write(socket, response, net::use_awaitable);
        if (!request.keep_alive()) break;
      }
    } catch (const std::exception&) {
      // The client went away.
    }
  }

  net::awaitable<void> Listen() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return;
      net::co_spawn(io, Session(std::move(socket)), net::detached);
    }
  }
};

HttpReceiver::HttpReceiver() : impl_(std::make_unique<Impl>()) {
  tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  net::co_spawn(impl_->io, impl_->Listen(), net::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

HttpReceiver::~HttpReceiver() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int HttpReceiver::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string HttpReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port()) + path;
}

void HttpReceiver::SetAnswer(Answer answer) {
  std::lock_guard lock(impl_->mutex);
  impl_->answer = std::move(answer);
}

void HttpReceiver::SetStatus(int status, std::string body) {
  SetAnswer([status, body](const ReceivedRequest&) { return std::pair(status, body); });
}

std::vector<ReceivedRequest> HttpReceiver::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->received;
}

}  // namespace fabu::testing
