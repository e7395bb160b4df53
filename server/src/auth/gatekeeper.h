// Admission of every gRPC call: the caller's token and role, and the
// per-token and overall limits on concurrent calls and request rate.
#ifndef LORAD_SERVER_AUTH_GATEKEEPER_H_
#define LORAD_SERVER_AUTH_GATEKEEPER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "auth/token_table.h"

namespace lorad::server::auth {

// The outcome of Gatekeeper::Admit for one call.
struct Verdict {
  // OK when the call may run; else UNAUTHENTICATED, PERMISSION_DENIED
  // (naming the role needed) or RESOURCE_EXHAUSTED.
  absl::Status status;
  // Who called, when admitted. Without auth: name "" with role admin.
  Identity caller;
  // For RESOURCE_EXHAUSTED: when to try again.
  int64_t retry_after_ms = 0;
  // Whether the call holds a concurrency slot that Release() gives back.
  bool holds_slot = false;
};

// This class is thread-safe.
class Gatekeeper {
 public:
  struct Options {
    // Empty: no authentication (every caller is an anonymous admin).
    std::string tokens_file;
    // Calls in flight per token (without auth: all calls together), and
    // over all tokens; 0 = unbounded. Streams count until they end.
    int max_concurrent_per_token = 0;
    int max_concurrent_total = 0;
    // Token bucket per token: `rate_per_token` calls per second refill a
    // bucket of `burst_per_token` (0 = unbounded rate).
    double rate_per_token = 0;
    double burst_per_token = 0;
    std::function<absl::Time()> now = [] { return absl::Now(); };
  };

  // Loads options.tokens_file when set; its error when it cannot.
  static absl::StatusOr<std::unique_ptr<Gatekeeper>> Create(Options options);

  bool auth_enabled() const { return !options_.tokens_file.empty(); }

  // Re-reads the tokens file. On error keeps the table in use and returns
  // why; calls already admitted are not affected either way.
  absl::Status Reload();
  // HTTP basic auth (for /metrics): true when `password` is a token of the
  // table and `user` its name. Constant time in the token, like Admit.
  bool CheckBasic(absl::string_view user, absl::string_view password) const;
  // Tokens in the table now.
  size_t token_count() const;

  // Decides on a call of `method` (its gRPC path) whose "authorization"
  // metadata is `authorization` (nullopt when absent). Health checks are
  // always admitted and never counted. An admitted call with holds_slot
  // must be passed to Release() when it ends.
  Verdict Admit(absl::string_view method,
                std::optional<absl::string_view> authorization);
  void Release(const Verdict& verdict);

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time last;
  };

  explicit Gatekeeper(Options options) : options_(std::move(options)) {}
  // The caller `authorization` names, or UNAUTHENTICATED.
  absl::StatusOr<Identity> Authenticate(
      std::optional<absl::string_view> authorization) const;
  // RESOURCE_EXHAUSTED (and retry_after_ms) when `caller` is over a limit;
  // else takes a slot and a rate token.
  void Limit(Verdict& verdict);

  const Options options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenTable> tokens_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> in_flight_ ABSL_GUARDED_BY(mu_);
  int in_flight_total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lorad::server::auth

#endif  // LORAD_SERVER_AUTH_GATEKEEPER_H_
