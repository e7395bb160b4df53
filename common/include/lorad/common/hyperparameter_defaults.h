// The defaults of the hyperparameters whose zero means something once a
// request carries hyperparameters at all (dropout 0 and max_grad_norm 0 are
// "off"; rank and learning_rate must be given). The server gives them to a
// request without hyperparameters; clients that send some hyperparameters
// (loractl, the OpenAI layer) fill the ones the user did not name, so that
// `--method dpo` alone means the defaults plus DPO. Header-only.
#ifndef LORAD_COMMON_HYPERPARAMETER_DEFAULTS_H_
#define LORAD_COMMON_HYPERPARAMETER_DEFAULTS_H_

#include <cstdint>

namespace lorad {

inline constexpr int32_t kDefaultRank = 8;
inline constexpr float kDefaultLearningRate = 2e-4f;
inline constexpr float kDefaultDropout = 0.05f;
inline constexpr float kDefaultMaxGradNorm = 1.0f;

}  // namespace lorad

#endif  // LORAD_COMMON_HYPERPARAMETER_DEFAULTS_H_
