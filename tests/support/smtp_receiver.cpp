#include "tests/support/smtp_receiver.hpp"

#include <utility>
// <utility> before Boost.Asio (STYLE.md).
#include <atomic>
#include <boost/asio.hpp>
#include <mutex>
#include <thread>

namespace fabu::testing {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct SmtpReceiver::Impl {
  net::io_context io;
  tcp::acceptor acceptor{io};
  std::uint16_t port = 0;
  std::atomic<bool> stop{false};
  mutable std::mutex mutex;
  std::vector<ReceivedMail> mails;
  std::thread thread;

  static std::string Address(const std::string& line) {
    const auto open = line.find('<'), close = line.rfind('>');
    if (open == std::string::npos || close == std::string::npos || close < open) return "";
    return line.substr(open + 1, close - open - 1);
  }

  void Serve(tcp::socket& socket) {
    net::streambuf buffer;
    auto say = [&](const std::string& text) { net::write(socket, net::buffer(text)); };
    auto line = [&]() {
      net::read_until(socket, buffer, "\r\n");
      std::istream in(&buffer);
      std::string text;
      std::getline(in, text);
      if (!text.empty() && text.back() == '\r') text.pop_back();
      return text;
    };
    say("220 127.0.0.1 fabu-test ESMTP\r\n");
    ReceivedMail mail;
    for (;;) {
      const std::string command = line();
      std::string verb = command.substr(0, 4);
      for (char& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (verb == "EHLO" || verb == "HELO") {
        say("250 127.0.0.1\r\n");
      } else if (verb == "MAIL") {
        mail = ReceivedMail{};
        mail.from = Address(command);
        say("250 OK\r\n");
      } else if (verb == "RCPT") {
        mail.recipients.push_back(Address(command));
        say("250 OK\r\n");
      } else if (verb == "DATA") {
        say("354 End data with <CR><LF>.<CR><LF>\r\n");
        std::string data;
        for (;;) {
          std::string text = line();
          if (text == ".") break;
          if (text.starts_with(".")) text.erase(0, 1);
          data += text + "\r\n";
        }
        mail.data = std::move(data);
        {
          std::lock_guard lock(mutex);
          mails.push_back(std::move(mail));
        }
        say("250 OK queued\r\n");
      } else if (verb == "QUIT") {
        say("221 Bye\r\n");
        return;
      } else if (verb == "RSET" || verb == "NOOP") {
        say("250 OK\r\n");
      } else {
        say("502 Command not implemented\r\n");
      }
    }
  }

  void Run() {
    while (!stop) {
      tcp::socket socket(io);
      boost::system::error_code ec;
      acceptor.accept(socket, ec);
      if (ec || stop) break;
      try {
        Serve(socket);
      } catch (const std::exception&) {
        // The client went away; wait for the next one.
      }
    }
  }
};

SmtpReceiver::SmtpReceiver(std::uint16_t port) : impl_(std::make_unique<Impl>()) {
  tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->thread = std::thread([this] { impl_->Run(); });
}

SmtpReceiver::~SmtpReceiver() {
  impl_->stop = true;
  // Wake the blocking accept with a connection of our own.
  try {
    net::io_context io;
    tcp::socket poke(io);
    poke.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), impl_->port));
  } catch (const std::exception&) {
  }
  impl_->thread.join();
}

std::uint16_t SmtpReceiver::port() const { return impl_->port; }

std::string SmtpReceiver::url() const { return "smtp://127.0.0.1:" + std::to_string(impl_->port); }

std::vector<ReceivedMail> SmtpReceiver::mails() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->mails;
}

}  // namespace fabu::testing
