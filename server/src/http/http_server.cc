#include "http/http_server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "http/url.h"

namespace lorad::server::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

std::string Request::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

std::string Request::Query(absl::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return "";
}

namespace {

// What outlives the I/O threads: Reply objects may be held by other
// threads after the server stopped, and must then do nothing.
struct Shared {
  std::mutex mu;
  bool stopped = false;
};

std::string Serialize(const bhttp::response_header<>& header) {
  std::ostringstream out;
  out << header;
  return out.str();
}

std::string Chunk(absl::string_view data) {
  return absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n");
}

std::string ErrorJson(absl::string_view message, absl::string_view type) {
  // `message` never holds quotes or backslashes (fixed texts below).
  return absl::StrCat(R"({"error":{"message":")", message, R"(","type":")",
                      type, R"(","param":null,"code":null}})");
}

}  // namespace

// One connection; everything runs on its strand.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual net::any_io_executor executor() = 0;
  // Strand-only below.
  virtual void Enqueue(std::string bytes, std::function<void(bool)> written,
                       bool last) = 0;
  virtual void AddCloseListener(std::function<void()> listener) = 0;
  // Closes the connection from outside the I/O threads once they stopped.
  virtual void Abort() = 0;
};

namespace {

class ReplyImpl final : public Reply {
 public:
  ReplyImpl(std::shared_ptr<Shared> shared, std::weak_ptr<SessionBase> session,
            bool keep_alive)
      : shared_(std::move(shared)),
        session_(std::move(session)),
        keep_alive_(keep_alive) {}

  void Send(Response r) override {
    bhttp::response<bhttp::empty_body> h;
    h.version(11);
    h.result(static_cast<unsigned>(r.status));
    h.set(bhttp::field::server, "lorad");
    h.set(bhttp::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) h.insert(k, v);
    h.content_length(r.body.size());
    h.keep_alive(keep_alive_);
    std::string bytes = Serialize(h.base()) + r.body;
    Post(std::move(bytes), nullptr, /*last=*/true);
  }

  void StartEvents(
      std::vector<std::pair<std::string, std::string>> headers) override {
    bhttp::response<bhttp::empty_body> h;
    h.version(11);
    h.result(bhttp::status::ok);
    h.set(bhttp::field::server, "lorad");
    h.set(bhttp::field::content_type, "text/event-stream");
    h.set(bhttp::field::cache_control, "no-cache");
    h.set(bhttp::field::transfer_encoding, "chunked");
    for (auto& [k, v] : headers) h.insert(k, v);
    h.keep_alive(keep_alive_);
    Post(Serialize(h.base()), nullptr, false);
  }

  void Event(std::string data, std::function<void(bool)> written) override {
    Post(Chunk(absl::StrCat("data: ", data, "\n\n")), std::move(written),
         false);
  }

  void EndEvents() override { Post("0\r\n\r\n", nullptr, true); }

  void OnClientGone(std::function<void()> on_close) override {
    std::lock_guard<std::mutex> lock(shared_->mu);
    std::shared_ptr<SessionBase> s = session_.lock();
    if (shared_->stopped || s == nullptr) {
      on_close();
      return;
    }
    net::post(s->executor(), [s, f = std::move(on_close)]() mutable {
      s->AddCloseListener(std::move(f));
    });
  }

 private:
  void Post(std::string bytes, std::function<void(bool)> written, bool last) {
    std::shared_ptr<SessionBase> s;
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      s = session_.lock();
      if (!shared_->stopped && s != nullptr) {
        net::post(s->executor(),
                  [s, b = std::move(bytes), w = written, last]() mutable {
                    s->Enqueue(std::move(b), std::move(w), last);
                  });
        return;
      }
    }
    if (written) written(false);
  }

  std::shared_ptr<Shared> shared_;
  std::weak_ptr<SessionBase> session_;
  const bool keep_alive_;
};

}  // namespace

struct HttpServer::Impl {
  // Declared so that the io_context goes first when the server is
  // destroyed: the connections it still holds use everything above it.
  ServerOptions options;
  Handler handler;
  std::atomic<int> connections{0};
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  std::optional<ssl::context> tls;
  int port = 0;
  net::io_context ioc;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
  // Every connection, for the destructor to close those still answering.
  std::mutex sessions_mu;
  std::vector<std::weak_ptr<SessionBase>> sessions;

  void Track(const std::shared_ptr<SessionBase>& session) {
    std::lock_guard<std::mutex> lock(sessions_mu);
    if (sessions.size() > 64 &&
        sessions.size() > 2 * static_cast<size_t>(connections.load())) {
      std::erase_if(sessions, [](const auto& w) { return w.expired(); });
    }
    sessions.push_back(session);
  }

  explicit Impl(ServerOptions o, Handler h)
      : options(std::move(o)),
        handler(std::move(h)),
        ioc(options.threads),
        acceptor(net::make_strand(ioc)) {}

  void Accept();
};

namespace {

template <class Stream>
class Session final : public SessionBase {
 public:
  Session(HttpServer::Impl* server, Stream stream)
      : server_(server), stream_(std::move(stream)) {}
  ~Session() override {
    server_->connections.fetch_sub(1);
    for (auto& f : close_listeners_) f();
    while (!queue_.empty()) {
      if (queue_.front().written) queue_.front().written(false);
      queue_.pop_front();
    }
  }

  net::any_io_executor executor() override { return stream_.get_executor(); }

  void Abort() override { Close(); }

  void Run() {
    server_->Track(shared_from_this());
    net::dispatch(stream_.get_executor(),
                  [self = Self()] { self->Handshake(); });
  }

  // Strand-only: the answer's bytes in order; `last` ends the answer.
  void Enqueue(std::string bytes, std::function<void(bool)> written,
               bool last) override {
    if (closed_) {
      if (written) written(false);
      return;
    }
    queue_.push_back({std::move(bytes), std::move(written), last});
    if (!writing_) WriteNext();
  }

  void AddCloseListener(std::function<void()> listener) override {
    if (closed_) {
      listener();
    } else {
      close_listeners_.push_back(std::move(listener));
    }
  }

 private:
  struct Pending {
    std::string bytes;
    std::function<void(bool)> written;
    bool last = false;
  };

  std::shared_ptr<Session> Self() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  beast::tcp_stream& Tcp() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      return stream_;
    } else {
      return beast::get_lowest_layer(stream_);
    }
  }

  void Handshake() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      Read();
    } else {
      Tcp().expires_after(std::chrono::seconds(30));
      stream_.async_handshake(ssl::stream_base::server,
                              [self = Self()](beast::error_code ec) {
                                if (ec) return self->Close();
                                self->Read();
                              });
    }
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(static_cast<uint64_t>(server_->options.max_body_bytes));
    parser_->header_limit(
        static_cast<uint32_t>(server_->options.max_header_bytes));
    Tcp().expires_after(std::chrono::milliseconds(absl::ToInt64Milliseconds(
        first_request_ ? server_->options.read_timeout
                       : server_->options.idle_timeout)));
    first_request_ = false;
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = Self()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      // The client is still sending the body: read it away after the
      // answer, or it would meet a reset before it reads the 413.
      drain_ = true;
      return Fail(413,
                  absl::StrCat("the request body is over the limit of ",
                               server_->options.max_body_bytes, " bytes"),
                  "invalid_request_error");
    }
    if (ec == bhttp::error::header_limit) {
      return Fail(431, "the request headers are too large",
                  "invalid_request_error");
    }
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset) {
      return Close();
    }
    if (ec) return Fail(400, "malformed HTTP request", "invalid_request_error");
    Tcp().expires_never();
    auto& msg = parser_->get();
    Request req;
    req.method =
        std::string(msg.method_string().data(), msg.method_string().size());
    const auto raw_target = msg.target();
    absl::string_view target(raw_target.data(), raw_target.size());
    auto q = target.find('?');
    if (!PercentDecode(target.substr(0, q), &req.path)) {
      return Fail(400, "malformed URL path", "invalid_request_error");
    }
    if (q != absl::string_view::npos &&
        !ParseQuery(target.substr(q + 1), &req.query)) {
      return Fail(400, "malformed URL query", "invalid_request_error");
    }
    for (const auto& f : msg) {
      req.headers.emplace_back(
          std::string(f.name_string().data(), f.name_string().size()),
          std::string(f.value().data(), f.value().size()));
    }
    req.body = std::move(msg.body());
    beast::error_code pec;
    auto ep = Tcp().socket().remote_endpoint(pec);
    if (!pec) req.peer = absl::StrCat(ep.address().to_string(), ":", ep.port());
    keep_alive_ = msg.keep_alive();
    // Nothing else holds the connection while the handler works.
    self_ = Self();
    auto reply = std::make_shared<ReplyImpl>(server_->shared, weak_from_this(),
                                             keep_alive_);
    server_->handler(std::move(req), std::move(reply));
  }

  // A failure to read a request: answered at once, then the connection
  // closes (its input can no longer be trusted).
  void Fail(int status, absl::string_view message, absl::string_view type) {
    keep_alive_ = false;
    bhttp::response<bhttp::empty_body> h;
    h.version(11);
    h.result(static_cast<unsigned>(status));
    h.set(bhttp::field::content_type, "application/json");
    std::string body = ErrorJson(message, type);
    h.content_length(body.size());
    h.keep_alive(false);
    Enqueue(Serialize(h.base()) + body, nullptr, true);
  }

  void WriteNext() {
    writing_ = true;
    net::async_write(
        stream_, net::buffer(queue_.front().bytes),
        [self = Self()](beast::error_code ec, size_t) { self->OnWritten(ec); });
  }

  void OnWritten(beast::error_code ec) {
    writing_ = false;
    Pending done = std::move(queue_.front());
    queue_.pop_front();
    if (done.written) done.written(!ec);
    if (ec) return Close();
    if (done.last) {
      auto keep = std::move(self_);
      if (drain_) return Drain(0);
      if (!keep_alive_) return Shutdown();
      Read();
      return;
    }
    if (!queue_.empty()) WriteNext();
  }

  // Reads and drops what the client still sends (up to the body limit
  // again, for at most 10 s), then closes.
  void Drain(uint64_t drained) {
    if (drained == 0) Tcp().expires_after(std::chrono::seconds(10));
    if (drained > static_cast<uint64_t>(server_->options.max_body_bytes)) {
      return Close();
    }
    scratch_.resize(16 << 10);
    stream_.async_read_some(
        net::buffer(scratch_),
        [self = Self(), drained](beast::error_code ec, size_t n) {
          if (ec) return self->Close();
          self->Drain(drained + n);
        });
  }

  void Shutdown() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      Close();
    } else {
      Tcp().expires_after(std::chrono::seconds(5));
      stream_.async_shutdown(
          [self = Self()](beast::error_code) { self->Close(); });
    }
  }

  void Close() {
    auto keep = std::move(self_);  // released last
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    Tcp().socket().close(ec);
    auto listeners = std::move(close_listeners_);
    close_listeners_.clear();
    for (auto& f : listeners) f();
    while (!queue_.empty() && !writing_) {
      if (queue_.front().written) queue_.front().written(false);
      queue_.pop_front();
    }
  }

  HttpServer::Impl* const server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::deque<Pending> queue_;
  std::vector<std::function<void()>> close_listeners_;
  bool writing_ = false;
  bool closed_ = false;
  bool keep_alive_ = true;
  bool first_request_ = true;
  bool drain_ = false;
  std::string scratch_;
  std::shared_ptr<Session> self_;  // while a handler answers
};

absl::StatusOr<tcp::endpoint> ParseEndpoint(const std::string& address) {
  auto colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--http_address must be host:port, got \"", address, "\""));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  beast::error_code ec;
  auto ip = net::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_address: \"", host, "\" is not an IP address"));
  }
  return tcp::endpoint(ip, static_cast<unsigned short>(port));
}

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor.async_accept(
      net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted) return;
        if (!ec) {
          // Events are small writes that must leave at once (no Nagle
          // wait for the previous one's ACK).
          beast::error_code nec;
          socket.set_option(tcp::no_delay(true), nec);
          if (connections.fetch_add(1) >= options.max_connections) {
            // Over the bound: a short 503 written synchronously on this
            // I/O thread (a few bytes into an empty socket buffer).
            connections.fetch_sub(1);
            std::string body = ErrorJson(
                "the server has too many open connections; retry shortly",
                "server_error");
            std::string bytes = absl::StrCat(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                "application/json\r\nRetry-After: 1\r\nConnection: "
                "close\r\nContent-Length: ",
                body.size(), "\r\n\r\n", body);
            beast::error_code wec;
            socket.non_blocking(true, wec);
            net::write(socket, net::buffer(bytes), wec);
            socket.close(wec);
          } else if (tls.has_value()) {
            std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
                this, beast::ssl_stream<beast::tcp_stream>(
                          beast::tcp_stream(std::move(socket)), *tls))
                ->Run();
          } else {
            std::make_shared<Session<beast::tcp_stream>>(
                this, beast::tcp_stream(std::move(socket)))
                ->Run();
          }
        }
        Accept();
      });
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    ServerOptions options, Handler handler) {
  if (options.threads < 1) options.threads = 1;
  auto endpoint = ParseEndpoint(options.address);
  if (!endpoint.ok()) return endpoint.status();
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  const ServerOptions& o = impl->options;
  if (!o.tls_cert.empty()) {
    impl->tls.emplace(ssl::context::tls_server);
    beast::error_code ec;
    impl->tls->set_options(ssl::context::default_workarounds |
                               ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                               ssl::context::no_tlsv1 |
                               ssl::context::no_tlsv1_1,
                           ec);
    impl->tls->use_certificate_chain_file(o.tls_cert, ec);
    if (!ec) impl->tls->use_private_key_file(o.tls_key, ssl::context::pem, ec);
    if (!ec && !o.tls_client_ca.empty()) {
      impl->tls->load_verify_file(o.tls_client_ca, ec);
      impl->tls->set_verify_mode(
          ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    }
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("HTTP TLS setup (", o.tls_cert, ", ", o.tls_key,
                       o.tls_client_ca.empty() ? "" : ", " + o.tls_client_ca,
                       "): ", ec.message()));
    }
  }
  beast::error_code ec;
  impl->acceptor.open(endpoint->protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(*endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve HTTP on ", impl->options.address, ": ", ec.message()));
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->Accept();
  Impl* raw = impl.get();
  for (int i = 0; i < raw->options.threads; ++i) {
    raw->threads.emplace_back([raw] { raw->ioc.run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  {
    std::lock_guard<std::mutex> lock(impl_->shared->mu);
    impl_->shared->stopped = true;
  }
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  // Connections whose answers were still being made hold themselves; with
  // the threads gone they can be closed from here.
  std::vector<std::weak_ptr<SessionBase>> sessions;
  {
    std::lock_guard<std::mutex> lock(impl_->sessions_mu);
    sessions.swap(impl_->sessions);
  }
  for (auto& weak : sessions) {
    if (auto s = weak.lock()) s->Abort();
  }
}

int HttpServer::port() const { return impl_->port; }
int HttpServer::open_connections() const { return impl_->connections.load(); }

}  // namespace lorad::server::http
