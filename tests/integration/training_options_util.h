// Helpers of the training-options integration tests (issue 15): loractl and
// curl against one real daemon, and the requests they share.
#ifndef LORAD_TESTS_INTEGRATION_TRAINING_OPTIONS_UTIL_H_
#define LORAD_TESTS_INTEGRATION_TRAINING_OPTIONS_UTIL_H_

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "auth_util.h"
#include "client_util.h"
#include "daemon_process.h"
#include "nlohmann/json.hpp"

namespace lorad::testing {

// What a command printed and how it ended.
struct Ran {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `loractl --address=ADDRESS ARGS`, its stdout and stderr kept apart (files
// under `dir`).
inline Ran RunLoractl(const std::string& dir, const std::string& address,
                      const std::string& args) {
  const std::string cmd = absl::StrCat(
      LORAD_BINARY_DIR, "/client/loractl --address=", address, " ", args,
      " < /dev/null > ", dir, "/loractl.out 2> ", dir, "/loractl.err");
  const int status = std::system(cmd.c_str());
  Ran r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(dir + "/loractl.out");
  r.err = ReadFile(dir + "/loractl.err");
  return r;
}

// The value of the "KEY  value" row `key` of `loractl get`'s output, "" when
// there is none.
inline std::string Row(const std::string& text, const std::string& key) {
  size_t at = text.rfind("\n" + key + "  ");
  if (at == std::string::npos) {
    if (text.rfind(key + "  ", 0) != 0) return "";
    at = 0;
  } else {
    at += 1;
  }
  size_t value = text.find_first_not_of(' ', at + key.size());
  size_t end = text.find('\n', value);
  return text.substr(value, end == std::string::npos ? end : end - value);
}

// An HTTP reply of the OpenAI-compatible API.
struct HttpReply {
  int status = 0;
  nlohmann::json body;
  std::string raw;
};

// `method` (GET or POST) of http://HTTP_ADDRESS/v1PATH with `body` (POST
// only) through curl; the status and the parsed JSON body.
inline HttpReply Http(const std::string& dir, const std::string& http_address,
                      const std::string& method, const std::string& path,
                      const nlohmann::json& body = nullptr) {
  std::string cmd = absl::StrCat("curl -s --max-time 120 -o ", dir,
                                 "/http.body -w '%{", "http_code}' -X ", method,
                                 " http://", http_address, "/v1", path);
  if (!body.is_null()) {
    std::ofstream(dir + "/http.request") << body.dump();
    absl::StrAppend(&cmd,
                    " -H 'Content-Type: application/json' --data-binary @", dir,
                    "/http.request");
  }
  CommandResult r = RunCommand(cmd);
  HttpReply reply;
  reply.status = r.exit_code == 0 ? std::atoi(r.output.c_str()) : -1;
  reply.raw = ReadFile(dir + "/http.body");
  reply.body = nlohmann::json::parse(reply.raw, nullptr, false);
  return reply;
}

// A {"prompt","chosen","rejected"} JSONL dataset of `n` pairs.
inline std::string PreferenceJsonl(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&out, "{\"prompt\": \"Q", i, ": which colour is ", i % 3,
                    "?\", \"chosen\": \" blue number ", i,
                    "\", \"rejected\": \" red ", i * 7 % 5, " no\"}\n");
  }
  return out;
}

}  // namespace lorad::testing

#endif  // LORAD_TESTS_INTEGRATION_TRAINING_OPTIONS_UTIL_H_
