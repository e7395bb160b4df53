// openai_bench: the same streaming completions load through the
// OpenAI-compatible HTTP API and through gRPC Generate, on one real lorad +
// worker (built-in tiny model), in alternating rounds so both meet the same
// machine; then JSON mode (response_format json_object) against the same
// HTTP load unconstrained. One JSON object per round and a summary with the
// ratios (goals: HTTP/gRPC tokens/s >= 0.95; JSON/plain tokens/s >= 0.9).
//
//   openai_bench [--clients=8] [--seconds=20] [--rounds=2] [--max_tokens=32]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// After <utility>: Boost 1.74's Asio uses std::exchange without including it.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench_stats.h"
#include "client_util.h"
#include "daemon_process.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(int, clients, 8, "Concurrent streaming clients.");
ABSL_FLAG(int, seconds, 20, "Length of one round.");
ABSL_FLAG(int, rounds, 2, "Rounds of each mode, alternating.");
ABSL_FLAG(int, max_tokens, 32, "Tokens per request.");

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr char kPrompt[] = "The color of a clear sky is";

struct Tally {
  std::mutex mu;
  int64_t requests = 0, failures = 0, tokens = 0;
  std::vector<double> ttft;
  void Add(bool ok, int64_t n, double first) {
    std::lock_guard<std::mutex> lock(mu);
    ++requests;
    if (!ok) ++failures;
    tokens += n;
    if (first >= 0) ttft.push_back(first);
  }
};

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// One streamed gRPC Generate; tokens received.
void GrpcOnce(lorad::testing::Client& client, Tally* tally) {
  grpc::ClientContext context;
  lorad::v1::GenerateRequest request;
  request.set_prompt(kPrompt);
  request.set_max_new_tokens(absl::GetFlag(FLAGS_max_tokens));
  const auto start = Clock::now();
  auto reader = client.inference->Generate(&context, request);
  lorad::v1::GenerateResponse m;
  int64_t n = 0;
  double first = -1;
  while (reader->Read(&m)) {
    if (first < 0 && m.token_ids_size() > 0) first = Since(start);
    n += m.token_ids_size();
  }
  tally->Add(reader->Finish().ok(), n, first);
}

// One streamed /v1/completions over a kept-alive connection; tokens are
// counted from the usage chunk.
bool HttpOnce(tcp::socket& socket, const std::string& host, bool json_mode,
              Tally* tally) {
  json body = {{"model", "tiny"},
               {"prompt", kPrompt},
               {"max_tokens", absl::GetFlag(FLAGS_max_tokens)},
               {"temperature", 0},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  // JSON mode with a schema whose string a random model fills until the
  // constraint steers it closed near max_tokens: answers as long as the
  // plain ones, so tokens/s compares decoding, not request overhead.
  if (json_mode) {
    body["response_format"] = {
        {"type", "json_schema"},
        {"json_schema",
         {{"name", "answer"},
          {"schema",
           {{"type", "object"},
            {"properties", {{"text", {{"type", "string"}}}}},
            {"required", {"text"}}}}}}};
  }
  bhttp::request<bhttp::string_body> req(bhttp::verb::post, "/v1/completions",
                                         11);
  req.set(bhttp::field::host, host);
  req.set(bhttp::field::content_type, "application/json");
  req.body() = body.dump();
  req.prepare_payload();
  const auto start = Clock::now();
  beast::error_code ec;
  bhttp::write(socket, req, ec);
  if (ec) return false;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);
  bhttp::read_header(socket, buffer, parser, ec);
  if (ec) return false;
  std::string text;
  char chunk[4096];
  double first = -1;
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof(chunk);
    bhttp::read_some(socket, buffer, parser, ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return false;
    const size_t got = sizeof(chunk) - parser.get().body().size;
    if (first < 0 && got > 0) first = Since(start);
    text.append(chunk, got);
  }
  int64_t tokens = 0;
  const size_t at = text.find("\"completion_tokens\":");
  if (at != std::string::npos) {
    absl::SimpleAtoi(text.substr(at + 20, text.find(',', at) - at - 20),
                     &tokens);
  }
  const bool ok = parser.get().result() == bhttp::status::ok &&
                  text.find("data: [DONE]") != std::string::npos;
  tally->Add(ok, tokens, first);
  return parser.get().keep_alive();
}

// Modes: grpc, http (plain), http_json (every client in JSON mode) and
// http_mixed (odd clients JSON, even plain; `tally` counts the plain ones
// only, to compare with http: what JSON rows cost the rows beside them).
json Round(const std::string& mode, const lorad::testing::DaemonProcess& d) {
  Tally tally;
  Tally json_rows;
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(absl::GetFlag(FLAGS_seconds));
  std::vector<std::thread> threads;
  for (int i = 0; i < absl::GetFlag(FLAGS_clients); ++i) {
    const bool json_client =
        mode == "http_json" || (mode == "http_mixed" && i % 2 == 1);
    Tally* counted = mode == "http_mixed" && json_client ? &json_rows : &tally;
    threads.emplace_back([&, json_client, counted] {
      if (mode == "grpc") {
        lorad::testing::Client client(d.address());
        while (Clock::now() < end) GrpcOnce(client, &tally);
        return;
      }
      const std::string& addr = d.http_address();
      const auto colon = addr.rfind(':');
      boost::asio::io_context ioc;
      while (Clock::now() < end) {
        tcp::socket socket(ioc);
        tcp::resolver resolver(ioc);
        beast::error_code ec;
        boost::asio::connect(
            socket,
            resolver.resolve(addr.substr(0, colon), addr.substr(colon + 1), ec),
            ec);
        if (ec) {
          counted->Add(false, 0, -1);
          continue;
        }
        while (Clock::now() < end &&
               HttpOnce(socket, addr, json_client, counted)) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double wall = Since(start);
  return {{"mode", mode},
          {"clients", absl::GetFlag(FLAGS_clients)},
          {"seconds", wall},
          {"requests", tally.requests},
          {"failures", tally.failures},
          {"tokens_per_second", tally.tokens / wall},
          {"ttft_p50_ms", lorad::bench::Percentile(tally.ttft, 0.5) * 1e3},
          {"ttft_p99_ms", lorad::bench::Percentile(tally.ttft, 0.99) * 1e3},
          {"tokens_per_request", tally.requests > 0
                                     ? static_cast<double>(tally.tokens) /
                                           static_cast<double>(tally.requests)
                                     : 0.0},
          {"json_rows_tokens_per_second", json_rows.tokens / wall}};
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  lorad::testing::TempDir dir;
  auto daemon = lorad::testing::DaemonProcess::Start(
      dir.path() + "/data",
      {absl::StrCat("--worker_binary=", lorad::testing::WorkerBinary()),
       "--device=cpu"});
  if (!daemon.ok()) {
    std::cerr << daemon.status() << "\n";
    return 1;
  }
  lorad::testing::Client warm((*daemon)->address());
  Tally ignored;
  GrpcOnce(warm, &ignored);  // the worker loads the model
  std::map<std::string, std::vector<json>> runs;
  for (int r = 0; r < absl::GetFlag(FLAGS_rounds); ++r) {
    for (const std::string mode : {"grpc", "http", "http_json", "http_mixed"}) {
      json row = Round(mode, **daemon);
      row["round"] = r;
      std::cout << row.dump() << std::endl;
      runs[mode].push_back(row);
    }
  }
  const auto sum = [&](const std::string& mode, const char* key) {
    double s = 0;
    for (const json& row : runs[mode]) s += row[key].get<double>();
    return s / static_cast<double>(runs[mode].size());
  };
  json summary = {
      {"summary", "openai_bench"},
      {"http_over_grpc_tokens_per_second",
       sum("http", "tokens_per_second") / sum("grpc", "tokens_per_second")},
      {"http_over_grpc_ttft_p50",
       sum("http", "ttft_p50_ms") / sum("grpc", "ttft_p50_ms")},
      {"json_over_plain_tokens_per_second",
       sum("http_json", "tokens_per_second") /
           sum("http", "tokens_per_second")},
      {"plain_beside_json_over_plain_alone_tokens_per_second",
       sum("http_mixed", "tokens_per_second") /
           (sum("http", "tokens_per_second") / 2)},
      {"goals",
       {{"http_over_grpc_tokens_per_second", ">= 0.95"},
        {"json_over_plain_tokens_per_second", ">= 0.9"}}}};
  std::cout << summary.dump() << std::endl;
  return 0;
}
