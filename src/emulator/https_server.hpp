// The emulator's one HTTPS listener: TLS, HTTP/1.1 keep-alive, many concurrent connections, a deadline on
// every step, each connection a coroutine on its own strand (so any number of io threads can run it).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>

#include "emulator/emulator_routes.hpp"

namespace esd::emulator {

class https_server {
 public:
  // Binds and listens at once; throws boost::system::system_error when the address cannot be used.
  https_server(boost::asio::io_context& ioc, boost::asio::ssl::context& tls,
               const boost::asio::ip::tcp::endpoint& listen_at, emulator_routes& routes);

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // Starts accepting connections (on the io_context's threads).
  void start();

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  boost::asio::ssl::context& tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  emulator_routes& routes_;
};

}  // namespace esd::emulator
