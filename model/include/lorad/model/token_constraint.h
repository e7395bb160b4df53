// A rule on which tokens may come next in a generation (constrained
// decoding, e.g. JSON mode). The decoder asks Mask() before it samples each
// token, feeds the chosen one to Accept(), and ends the generation once
// Complete() says the output is whole. One constraint belongs to one
// request and is used from one thread.
#ifndef LORAD_MODEL_TOKEN_CONSTRAINT_H_
#define LORAD_MODEL_TOKEN_CONSTRAINT_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace lorad::model {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;

  // `allowed` has one entry per logit (it may be longer than the
  // tokenizer's vocabulary; ids the tokenizer does not know are never
  // allowed). Sets allowed[id] = 0 for every id that may not come next and
  // leaves the others as they were (the caller fills it with 1 first).
  // `remaining` is how many tokens the request may still generate, this one
  // included: a constraint may use it to steer towards a complete output
  // in time. At least one id stays allowed unless Complete().
  virtual void Mask(int64_t remaining, std::vector<uint8_t>& allowed) = 0;

  // Advances past `token`, which Mask() allowed. InvalidArgument (naming
  // the token) if it was not; the state is then unchanged.
  virtual absl::Status Accept(int32_t token) = 0;

  // True when the output so far is complete and nothing may follow it: the
  // generation ends here (finish_reason "stop").
  virtual bool Complete() const = 0;
};

}  // namespace lorad::model

#endif  // LORAD_MODEL_TOKEN_CONSTRAINT_H_
