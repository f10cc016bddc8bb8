// Foundation smoke test: a Boost.Beast server on 127.0.0.1 answers one request from a Beast
// client in the same process, with a JSON body built by nlohmann_json.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <thread>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

TEST(BeastSmoke, ServesOneRequestOnLoopback) {
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const unsigned short port = acceptor.local_endpoint().port();
  ASSERT_NE(port, 0);

  std::string seen_target;
  std::thread server([&] {
    tcp::socket socket(ioc);
    acceptor.accept(socket);
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::read(socket, buffer, req);
    seen_target = std::string(req.target());
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = nlohmann::json{{"echo", seen_target}, {"body", req.body()}}.dump();
    res.prepare_payload();
    http::write(socket, res);
    beast::error_code ec;
    socket.shutdown(tcp::socket::shutdown_send, ec);
  });

  asio::io_context client_ioc;
  tcp::socket client(client_ioc);
  client.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::verb::post, "/smoke?x=1", 11};
  req.set(http::field::host, "127.0.0.1");
  req.body() = "hello";
  req.prepare_payload();
  http::write(client, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(client, buffer, res);
  server.join();

  EXPECT_EQ(res.result(), http::status::ok);
  nlohmann::json body = nlohmann::json::parse(res.body());
  EXPECT_EQ(body.at("echo"), "/smoke?x=1");
  EXPECT_EQ(body.at("body"), "hello");
  EXPECT_EQ(seen_target, "/smoke?x=1");
}

}  // namespace
