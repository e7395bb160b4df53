#include "auth/gatekeeper.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "auth/roles.h"
#include "lorad/common/status_macros.h"

namespace lorad::server::auth {
namespace {

constexpr absl::string_view kBearer = "Bearer ";
constexpr int64_t kConcurrencyRetryMs = 1000;

}  // namespace

absl::StatusOr<std::unique_ptr<Gatekeeper>> Gatekeeper::Create(
    Options options) {
  std::unique_ptr<Gatekeeper> gate(new Gatekeeper(std::move(options)));
  if (gate->auth_enabled()) LORAD_RETURN_IF_ERROR(gate->Reload());
  return gate;
}

absl::Status Gatekeeper::Reload() {
  if (!auth_enabled()) {
    return absl::FailedPreconditionError("no --auth_tokens_file to reload");
  }
  LORAD_ASSIGN_OR_RETURN(TokenTable table,
                         TokenTable::Load(options_.tokens_file));
  auto shared = std::make_shared<const TokenTable>(std::move(table));
  absl::MutexLock lock(&mu_);
  tokens_ = std::move(shared);
  return absl::OkStatus();
}

bool Gatekeeper::CheckBasic(absl::string_view user,
                            absl::string_view password) const {
  if (!auth_enabled()) return false;
  std::shared_ptr<const TokenTable> tokens;
  {
    absl::MutexLock lock(&mu_);
    tokens = tokens_;
  }
  std::optional<Identity> identity = tokens->Find(password);
  return identity.has_value() && identity->name == user;
}

size_t Gatekeeper::token_count() const {
  absl::MutexLock lock(&mu_);
  return tokens_ == nullptr ? 0 : tokens_->size();
}

absl::StatusOr<Identity> Gatekeeper::Authenticate(
    std::optional<absl::string_view> authorization) const {
  if (!auth_enabled()) return Identity{"", Role::kAdmin};
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "no API token: send metadata \"authorization: Bearer <token>\" "
        "(loractl: --token, LORAD_TOKEN or the config file)");
  }
  if (!absl::StartsWith(*authorization, kBearer)) {
    return absl::UnauthenticatedError(
        "the authorization metadata is not \"Bearer <token>\"");
  }
  absl::string_view token =
      absl::StripAsciiWhitespace(authorization->substr(kBearer.size()));
  std::shared_ptr<const TokenTable> tokens;
  {
    absl::MutexLock lock(&mu_);
    tokens = tokens_;
  }
  std::optional<Identity> identity = tokens->Find(token);
  if (!identity.has_value()) {
    return absl::UnauthenticatedError("the API token is not valid");
  }
  return *identity;
}

Verdict Gatekeeper::Admit(absl::string_view method,
                          std::optional<absl::string_view> authorization) {
  Verdict verdict;
  const MethodRule rule = RuleFor(method);
  if (rule.public_method) return verdict;
  absl::StatusOr<Identity> caller = Authenticate(authorization);
  if (!caller.ok()) {
    verdict.status = caller.status();
    return verdict;
  }
  verdict.caller = *std::move(caller);
  if (!rule.minimum.has_value()) {
    verdict.status = absl::PermissionDeniedError(
        absl::StrCat(method, " is not open to any role"));
    return verdict;
  }
  if (verdict.caller.role < *rule.minimum) {
    verdict.status = absl::PermissionDeniedError(absl::StrCat(
        method, " needs role ", RoleName(*rule.minimum), " or above; token \"",
        verdict.caller.name, "\" has role ", RoleName(verdict.caller.role)));
    return verdict;
  }
  Limit(verdict);
  return verdict;
}

void Gatekeeper::Limit(Verdict& verdict) {
  const std::string& name = verdict.caller.name;
  const absl::Time now = options_.now();
  absl::MutexLock lock(&mu_);
  int& mine = in_flight_[name];
  if (options_.max_concurrent_total > 0 &&
      in_flight_total_ >= options_.max_concurrent_total) {
    verdict.status = absl::ResourceExhaustedError(absl::StrCat(
        "lorad is serving its limit of ", options_.max_concurrent_total,
        " concurrent calls; retry after ", kConcurrencyRetryMs, " ms"));
    verdict.retry_after_ms = kConcurrencyRetryMs;
  } else if (options_.max_concurrent_per_token > 0 &&
             mine >= options_.max_concurrent_per_token) {
    verdict.status = absl::ResourceExhaustedError(absl::StrCat(
        "token \"", name, "\" has its limit of ",
        options_.max_concurrent_per_token,
        " concurrent calls open; retry after ", kConcurrencyRetryMs, " ms"));
    verdict.retry_after_ms = kConcurrencyRetryMs;
  } else if (options_.rate_per_token > 0) {
    const double burst = std::max(1.0, options_.burst_per_token);
    auto [it, inserted] = buckets_.try_emplace(name, Bucket{burst, now});
    Bucket& bucket = it->second;
    bucket.tokens = std::min(
        burst, bucket.tokens + absl::ToDoubleSeconds(now - bucket.last) *
                                   options_.rate_per_token);
    bucket.last = now;
    if (bucket.tokens < 1) {
      verdict.retry_after_ms = static_cast<int64_t>(
          std::ceil((1 - bucket.tokens) / options_.rate_per_token * 1000));
      verdict.status = absl::ResourceExhaustedError(absl::StrCat(
          "token \"", name, "\" is over its rate of ", options_.rate_per_token,
          " calls per second; retry after ", verdict.retry_after_ms, " ms"));
    } else {
      bucket.tokens -= 1;
    }
  }
  if (!verdict.status.ok()) {
    if (mine == 0) in_flight_.erase(name);
    return;
  }
  ++mine;
  ++in_flight_total_;
  verdict.holds_slot = true;
}

void Gatekeeper::Release(const Verdict& verdict) {
  if (!verdict.holds_slot) return;
  absl::MutexLock lock(&mu_);
  --in_flight_total_;
  auto it = in_flight_.find(verdict.caller.name);
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
}

}  // namespace lorad::server::auth
