// The daemon's HTTP/1.1 face (Boost.Beast over Asio): plain or TLS (the
// API's certificate, client certificates required under a client CA),
// bounded in threads, connections, header and body sizes and time to read a
// request. Every connection is asynchronous: a request is handed to the
// handler on an I/O thread, the handler answers later through its Reply
// from any thread, and a server-sent-event stream holds no thread while it
// waits for its next event.
#ifndef LORAD_SERVER_HTTP_HTTP_SERVER_H_
#define LORAD_SERVER_HTTP_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lorad::server::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target without its query, percent-decoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string peer;  // "ip:port"

  // The first header named `name` (case-insensitive), or "".
  std::string Header(absl::string_view name) const;
  // The first query parameter named `name`, or "".
  std::string Query(absl::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// One request's answer. Thread-safe; every method may be called from any
// thread. Either Send() once, or StartEvents(), any number of Event(), then
// EndEvents(). Calls after the connection closed do nothing.
class Reply {
 public:
  virtual ~Reply() = default;
  virtual void Send(Response response) = 0;
  // Starts a text/event-stream response (chunked).
  virtual void StartEvents(
      std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  // Writes "data: <data>\n\n". `written` (may be empty) runs once the bytes
  // went to the socket, or with false once they never will (the client
  // left): a producer waits for it before the next event, so a slow client
  // slows its own stream only.
  virtual void Event(std::string data,
                     std::function<void(bool ok)> written = nullptr) = 0;
  virtual void EndEvents() = 0;
  // Runs `on_close` once if the client goes away before the answer ends
  // (at once if it already has).
  virtual void OnClientGone(std::function<void()> on_close) = 0;
};

using Handler = std::function<void(Request, std::shared_ptr<Reply>)>;

struct ServerOptions {
  std::string address = "127.0.0.1:0";  // host:port; port 0 picks one
  int threads = 2;                      // I/O threads, the only ones
  int max_connections = 256;            // more are answered 503 and closed
  int64_t max_body_bytes = 64 << 20;
  int64_t max_header_bytes = 16 << 10;
  absl::Duration read_timeout = absl::Seconds(60);   // for one whole request
  absl::Duration idle_timeout = absl::Seconds(120);  // keep-alive between
  // TLS when cert is set (PEM paths); client_ca requires client
  // certificates signed by it.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
};

class HttpServer {
 public:
  // Listens and starts the I/O threads; the error when it cannot (the
  // address, the certificate). `handler` is called on I/O threads and must
  // not block.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      ServerOptions options, Handler handler);
  // Stops listening, closes every connection, joins the threads.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  int open_connections() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorad::server::http

#endif  // LORAD_SERVER_HTTP_HTTP_SERVER_H_
