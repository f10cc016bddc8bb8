// Boost.Beast/Asio server: one acceptor, a thread pool, one session per connection reading
// requests with header and body limits and an idle timeout, answering through the Router.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <future>
#include <optional>
#include <random>
#include <thread>

#include "common/log.h"
#include "http/http.h"
#include "http/http_internal.h"
#include "query/json_format.h"

namespace imsat::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

class Session;

struct Server::Impl {
  asio::io_context ioc;
  // The acceptor is not thread-safe: its accepts, their handlers, the back-off timer and the
  // close in stop() all run on this one strand, never on two I/O threads at once.
  asio::strand<asio::io_context::executor_type> accept_strand = asio::make_strand(ioc);
  tcp::acceptor acceptor{accept_strand};
  std::vector<std::thread> threads;
  std::unique_ptr<Router> router;
  Limits limits;
  std::atomic<bool> stopping{false};
  std::atomic<int> in_flight{0};
  std::mutex sessions_mutex;
  // Oldest first: to close idle ones at the connection cap, and every one on stop.
  std::vector<std::weak_ptr<Session>> sessions;
  std::atomic<size_t> open_sessions{0};
  size_t max_connections = 0;  // below the descriptor limit (connection_cap)
  std::atomic<bool> descriptors_warned{false};
  asio::steady_timer accept_backoff{accept_strand};
  bool stopped = false;
  // Heavy requests (Router::is_heavy) run here, never on the I/O threads (declared after ioc so
  // that it is destroyed, and joined, before the io_context).
  std::unique_ptr<asio::thread_pool> heavy_pool;
  // Searches by vector or image (Router::encodes), so that many wait for one batched model call.
  std::unique_ptr<asio::thread_pool> model_pool;

  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  // At the connection cap: closes the oldest idle connection; false when none is idle.
  bool close_oldest_idle();
};

namespace {

Response to_error(int status, const std::string& message) {
  return internal::error_answer(status, message, internal::error_code_for(status));
}

// A request id a client sent (X-Request-Id), when it is 1-128 visible ASCII characters; else a
// new one (16 hex digits).
std::string request_id(beast::string_view given) {
  const bool usable =
      !given.empty() && given.size() <= 128 &&
      std::all_of(given.begin(), given.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (usable) return std::string(given);
  static std::atomic<uint64_t> counter{0};
  static const uint64_t seed =
      std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
  uint64_t x = seed + 0x9e3779b97f4a7c15ULL * (counter.fetch_add(1) + 1);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;  // splitmix64: distinct ids, evenly spread
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl& server)
      : stream_(std::make_shared<beast::tcp_stream>(std::move(socket))), server_(server) {
    server_.open_sessions.fetch_add(1);
    beast::error_code ec;
    const tcp::endpoint peer = stream_->socket().remote_endpoint(ec);
    if (!ec) client_ = peer.address().to_string() + ":" + std::to_string(peer.port());
  }
  ~Session() { server_.open_sessions.fetch_sub(1); }

  std::shared_ptr<beast::tcp_stream> stream() const { return stream_; }
  // Waiting for the first byte of a next request (nothing read, nothing being answered).
  bool idle() const { return idle_.load(); }

  void start() { read(); }

 private:
  void read() {
    idle_.store(buffer_.size() == 0);
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.limits.max_header_bytes));
    parser_->body_limit(server_.limits.max_body_bytes);
    stream_->expires_after(std::chrono::seconds(server_.limits.read_timeout_seconds));
    // Headers first: a client that sent "Expect: 100-continue" (curl does for bodies over 1 KiB)
    // waits for a 100 Continue before it sends the body.
    bhttp::async_read_header(*stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, size_t) {
    idle_.store(false);
    started_ = std::chrono::steady_clock::now();
    method_.clear();
    request_id_ = request_id({});
    if (ec) {
      on_read(ec, 0);
      return;
    }
    const auto& req = parser_->get();
    method_ = std::string(req.method_string());
    request_id_ = request_id(req["x-request-id"]);
    // RFC 9112, 6.1: a transfer coding the server does not understand gets 501. Only chunked is
    // understood (Beast decodes it); the connection closes as the body cannot be framed.
    const beast::string_view coding = req[bhttp::field::transfer_encoding];
    if (!coding.empty() && !beast::iequals(coding, "chunked")) {
      drain_on_close_ = true;
      respond(to_error(501, "Transfer-Encoding '" + std::string(coding) +
                                "' is not supported; send the body as is, or chunked"),
              false);
      return;
    }
    // Authorization comes from the headers alone: a request without the token its endpoint
    // needs is answered before its body is read or parsed (and the connection closed, as the
    // unread body would otherwise be taken for the next request).
    if (std::optional<Response> refused = server_.router->refuse_unauthorized(
            std::string(req.method_string()), std::string(req.target()),
            std::string(req[bhttp::field::authorization]))) {
      drain_on_close_ = true;
      respond(std::move(*refused), false);
      return;
    }
    if (beast::iequals(req[bhttp::field::expect], "100-continue") && !parser_->is_done()) {
      auto cont =
          std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
      bhttp::async_write(*stream_, *cont,
                         [self = shared_from_this(), cont](beast::error_code ec2, size_t) {
                           if (ec2) {
                             self->close();
                             return;
                           }
                           self->read_body();
                         });
      return;
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(*stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || server_.stopping.load()) {
      if (!ec) {
        // A request arrived while stopping: refuse it politely.
        respond(to_error(503, "the server is shutting down"), false);
        return;
      }
      close();
      return;
    }
    if (ec) {
      // Limits and malformed requests get an answer before the connection closes.
      if (ec == bhttp::error::body_limit) {
        respond(to_error(413, "request body exceeds " +
                                  std::to_string(server_.limits.max_body_bytes) + " bytes"),
                false);
      } else if (ec == bhttp::error::header_limit) {
        respond(to_error(431, "request headers exceed " +
                                  std::to_string(server_.limits.max_header_bytes) + " bytes"),
                false);
      } else {
        respond(to_error(400, "malformed HTTP request: " + ec.message()), false);
      }
      return;
    }
    server_.in_flight.fetch_add(1);
    bhttp::request<bhttp::string_body> req = parser_->release();
    Request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(field.value());
    }
    r.body = std::move(req.body());
    bytes_in_ = r.body.size();
    const bool keep_alive = req.keep_alive() && !server_.stopping.load();
    Router& router = *server_.router;
    if (router.is_heavy(r)) {
      counted_ = true;
      if (!router.try_reserve_heavy()) {
        respond(router.busy_response(), keep_alive);
        return;
      }
      asio::post(*server_.heavy_pool,
                 [self = shared_from_this(), r = std::move(r), keep_alive]() mutable {
                   Response out = self->server_.router->handle(r, Router::Heavy::kReserved);
                   self->server_.router->release_heavy();
                   asio::post(self->stream_->get_executor(),
                              [self, out = std::move(out), keep_alive]() mutable {
                                self->respond(std::move(out), keep_alive);
                              });
                 });
      return;
    }
    if (server_.model_pool != nullptr && router.encodes(r)) {
      counted_ = true;
      asio::post(*server_.model_pool,
                 [self = shared_from_this(), r = std::move(r), keep_alive]() mutable {
                   Response out = self->server_.router->handle(r, Router::Heavy::kNo);
                   asio::post(self->stream_->get_executor(),
                              [self, out = std::move(out), keep_alive]() mutable {
                                self->respond(std::move(out), keep_alive);
                              });
                 });
      return;
    }
    Response out = router.handle(r, Router::Heavy::kNo);
    counted_ = true;
    respond(std::move(out), keep_alive);
  }

  // A file body (Response::file): streamed from disk, with a write deadline that grows with its
  // size (1 MiB/s at the least) rather than the idle timeout.
  void respond_file(Response r, bool keep_alive) {
    auto res = std::make_shared<bhttp::response<bhttp::file_body>>(
        static_cast<bhttp::status>(r.status), 11);
    beast::error_code ec;
    res->body().open(r.file.c_str(), beast::file_mode::scan, ec);
    if (r.remove_file) ::unlink(r.file.c_str());
    if (ec) {
      respond(to_error(500, "cannot open the answer's file: " + ec.message()), keep_alive);
      return;
    }
    res->set(bhttp::field::server, "imsat");
    res->set(bhttp::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res->set(name, value);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    const uint64_t bytes = res->body().size();
    log_access(r, bytes);
    stream_->expires_after(std::chrono::seconds(server_.limits.read_timeout_seconds) +
                           std::chrono::seconds(bytes >> 20));
    bhttp::async_write(*stream_, *res,
                       [self = shared_from_this(), res, keep_alive](beast::error_code ec2, size_t) {
                         self->on_write(ec2, keep_alive);
                       });
  }

  // One access-log line per answer: never the target's query string, a header's value (but the
  // request id) or a body.
  void log_access(const Response& r, uint64_t bytes_out) {
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
            .count();
    nlohmann::json fields = {{"method", method_.empty() ? "-" : method_},
                             {"route", r.route.empty() ? "-" : r.route},
                             {"collection", r.collection.empty() ? "-" : r.collection},
                             {"status", r.status},
                             {"bytes_in", bytes_in_},
                             {"bytes_out", bytes_out},
                             {"ms", std::round(ms * 100) / 100},
                             {"client", client_.empty() ? "-" : client_},
                             {"request_id", request_id_}};
    if (!r.error_code.empty()) fields["error"] = r.error_code;
    if (r.status >= 500) {
      log::warn("access", fields);
    } else {
      log::info("access", fields);
    }
    bytes_in_ = 0;
  }

  void respond(Response r, bool keep_alive) {
    if (request_id_.empty()) request_id_ = request_id({});
    r.headers["X-Request-Id"] = request_id_;
    if (!r.file.empty()) {
      respond_file(std::move(r), keep_alive);
      return;
    }
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(r.status), 11);
    res->set(bhttp::field::server, "imsat");
    res->set(bhttp::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res->set(name, value);
    res->keep_alive(keep_alive);
    log_access(r, r.body.size());
    res->body() = std::move(r.body);
    res->prepare_payload();
    stream_->expires_after(std::chrono::seconds(server_.limits.read_timeout_seconds));
    bhttp::async_write(*stream_, *res,
                       [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
                         self->on_write(ec, keep_alive);
                       });
  }

  void on_write(beast::error_code ec, bool keep_alive) {
    if (counted_) {
      server_.in_flight.fetch_sub(1);
      counted_ = false;
    }
    if (ec || !keep_alive) {
      if (!ec && drain_on_close_) {
        beast::error_code ignored;
        stream_->socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_->expires_after(std::chrono::seconds(2));
        drain();
      } else {
        close();
      }
      return;
    }
    read();
  }

  // After answering a request whose body was never read (sending already shut down, a 2 s
  // deadline set): read and discard what the client still sends, at most the body limit, so that
  // the close does not reset the connection before the client has read the answer.
  void drain() {
    scratch_.resize(64 * 1024);
    stream_->async_read_some(
        asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec2, size_t n) {
          self->drained_bytes_ += n;
          if (ec2 || self->drained_bytes_ > self->server_.limits.max_body_bytes) {
            self->close();
          } else {
            self->drain();
          }
        });
  }

  void close() {
    beast::error_code ec;
    stream_->socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_->socket().close(ec);
  }

  std::shared_ptr<beast::tcp_stream> stream_;
  Server::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool counted_ = false;
  std::atomic<bool> idle_{false};
  bool drain_on_close_ = false;  // the last answer left a request body unread
  std::vector<char> scratch_;
  size_t drained_bytes_ = 0;
  // The request being answered, for the access log.
  std::string client_, method_, request_id_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  size_t bytes_in_ = 0;
};

namespace {

// The most connections a server keeps open: below the process's descriptor limit, with room for
// the store's files, so that accepting never runs out of descriptors. The soft limit is raised
// to the hard one first (as most servers do).
size_t connection_cap(size_t configured) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  const size_t descriptors =
      lim.rlim_cur == RLIM_INFINITY ? size_t{1} << 20 : static_cast<size_t>(lim.rlim_cur);
  const size_t fits = descriptors > 64 ? descriptors * 3 / 4 - 32 : 8;
  return configured > 0 ? std::min(configured, fits) : fits;
}

// Written on a fresh socket before closing it: far smaller than any socket buffer, so the write
// does not block.
const std::string& too_many_connections() {
  static const std::string answer = [] {
    const std::string body =
        "{\"error\": \"the server holds its most connections; retry shortly\", "
        "\"code\": \"busy\"}\n";
    return "HTTP/1.1 503 Service Unavailable\r\nServer: imsat\r\nContent-Type: "
           "application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return answer;
}

}  // namespace

bool Server::Impl::close_oldest_idle() {
  std::lock_guard lock(sessions_mutex);
  for (auto& w : sessions) {
    std::shared_ptr<Session> s = w.lock();
    if (s == nullptr || !s->idle()) continue;
    std::shared_ptr<beast::tcp_stream> stream = s->stream();
    w.reset();  // asked to close once
    asio::post(stream->get_executor(), [stream] {
      beast::error_code ec;
      stream->socket().shutdown(tcp::socket::shutdown_both, ec);
      stream->socket().close(ec);
    });
    return true;
  }
  return false;
}

void Server::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Server::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || stopping.load()) return;
  if (ec == asio::error::no_descriptors || ec.value() == EMFILE || ec.value() == ENFILE) {
    // Out of descriptors (the store's files grew, or another part of the process holds them):
    // the connection waits in the backlog while accepting backs off, instead of spinning.
    if (!descriptors_warned.exchange(true)) {
      log::error("accept_backoff",
                 {{"reason", ec.message()},
                  {"max_connections", max_connections},
                  {"advice", "raise the limit (ulimit -n) or lower --max-connections"}});
    }
    accept_backoff.expires_after(std::chrono::milliseconds(50));
    accept_backoff.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && !stopping.load()) accept();
    });
    return;
  }
  if (ec) {
    log::error("accept_failed", {{"reason", ec.message()}});
  } else if (open_sessions.load() >= max_connections && !close_oldest_idle()) {
    // Every connection is busy: this one is told so, and closed.
    beast::error_code ignored;
    asio::write(socket, asio::buffer(too_many_connections()), ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  } else {
    auto session = std::make_shared<Session>(std::move(socket), *this);
    {
      std::lock_guard lock(sessions_mutex);
      sessions.erase(std::remove_if(sessions.begin(), sessions.end(),
                                    [](const auto& w) { return w.expired(); }),
                     sessions.end());
      sessions.push_back(session);
    }
    session->start();
  }
  accept();
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { stop(); }

Result<std::unique_ptr<Server>> Server::start(query::QueryEngine& engine,
                                              const ServerOptions& options) {
  return start_with(
      std::make_unique<Router>(engine, options.limits, options.token, options.read_token), options);
}

Result<std::unique_ptr<Server>> Server::start(query::Catalog& catalog,
                                              const ServerOptions& options) {
  return start_with(
      std::make_unique<Router>(catalog, options.limits, options.token, options.read_token),
      options);
}

Result<std::unique_ptr<Server>> Server::start_with(std::unique_ptr<Router> router,
                                                   const ServerOptions& options) {
  if (!options.read_token.empty() && options.token.empty()) {
    return Status::invalid_argument(
        "a read token without a write token would leave every write open to anyone: give the "
        "write token too (--token or IMSAT_TOKEN)");
  }
  auto impl = std::make_unique<Impl>();
  impl->limits = options.limits;
  impl->router = std::move(router);
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(options.bind, ec);
  if (ec) return Status::invalid_argument("bad bind address '" + options.bind + "'");
  const tcp::endpoint endpoint(address, options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::io_error("cannot listen on " + options.bind + ":" +
                            std::to_string(options.port) + ": " + ec.message());
  }
  impl->heavy_pool = std::make_unique<asio::thread_pool>(
      static_cast<size_t>(std::max(1, options.limits.heavy_slots)));
  if (options.model_threads > 0) {
    impl->model_pool =
        std::make_unique<asio::thread_pool>(static_cast<size_t>(options.model_threads));
  }
  impl->max_connections = connection_cap(options.max_connections);
  impl->accept();
  const int threads = std::max(1, options.threads);
  for (int i = 0; i < threads; ++i) {
    impl->threads.emplace_back([raw = impl.get()] { raw->ioc.run(); });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

uint16_t Server::port() const {
  beast::error_code ec;
  const tcp::endpoint e = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : e.port();
}

Router& Server::router() { return *impl_->router; }

void Server::stop(double grace_seconds) {
  if (impl_ == nullptr || impl_->stopped) return;
  impl_->stopped = true;
  impl_->router->set_draining();
  impl_->stopping.store(true);
  // Close the acceptor on an I/O thread (it is not thread-safe) and wait until it is closed.
  std::promise<void> closed;
  asio::post(impl_->acceptor.get_executor(), [this, &closed] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    closed.set_value();
  });
  closed.get_future().wait_for(std::chrono::seconds(5));
  // Requests in flight finish and are answered; then every connection is closed.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_seconds);
  while (impl_->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  {
    std::lock_guard lock(impl_->sessions_mutex);
    for (auto& w : impl_->sessions) {
      if (auto session = w.lock()) {
        std::shared_ptr<beast::tcp_stream> s = session->stream();
        asio::post(s->get_executor(), [s] {
          beast::error_code ec;
          s->socket().shutdown(tcp::socket::shutdown_both, ec);
          s->socket().close(ec);
        });
      }
    }
  }
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  if (impl_->heavy_pool) impl_->heavy_pool->join();
  if (impl_->model_pool) impl_->model_pool->join();
}

void Server::wait_for_signal() {
  asio::io_context signals_ioc;
  asio::signal_set signals(signals_ioc, SIGINT, SIGTERM);
  signals.async_wait([](beast::error_code, int) {});
  signals_ioc.run();
  stop();
}

}  // namespace imsat::http
