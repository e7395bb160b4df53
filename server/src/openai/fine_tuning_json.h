// The API's fine-tuning objects (job, event, checkpoint, list page) made
// from lorad's, and a create-job body read into lorad's request.
#ifndef LORAD_SERVER_OPENAI_FINE_TUNING_JSON_H_
#define LORAD_SERVER_OPENAI_FINE_TUNING_JSON_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lorad/v1/lorad.pb.h"

namespace lorad::server::openai {

// The API's job object; `method` in the API's shape ({"type": "supervised"
// | "dpo", "<type>": {"hyperparameters": {...}}}, DPO's with its beta), and
// lorad's own fields beside (optimizer, quantization, dpo_loss_type, ...).
// Step and evaluation events of DPO jobs carry rewards_chosen,
// rewards_rejected, reward_margin and reward_accuracy in their data.
nlohmann::json JobObject(const v1::FineTuneJob& job);

// `body`: model, training_file, validation_file, suffix, seed,
// hyperparameters (n_epochs, batch_size, learning_rate_multiplier, each a
// number or "auto", plus any lorad Hyperparameters field such as rank,
// alpha, max_steps, target_modules, optimizer, quantization or
// dpo_loss_type), and method: {"type": "supervised"} (lorad's sft) with
// method.supervised.hyperparameters (the same), or {"type": "dpo"} with
// method.dpo.hyperparameters (the same plus "beta", a number in (0, 100] or
// "auto"). False with `message` and `param` naming the bad field.
bool ReadCreateJob(const nlohmann::json& body, const std::string& base_model,
                   v1::CreateFineTuneJobRequest* out, std::string* message,
                   std::string* param);

// Newest first, as the API lists them.
std::vector<nlohmann::json> EventObjects(
    const std::string& job_id, const std::vector<v1::JobEvent>& events);
std::vector<nlohmann::json> CheckpointObjects(
    const std::string& job_id, const std::vector<v1::JobEvent>& events);

// {"object":"list","data":[...],"has_more":...}: the `limit` items after the
// one whose "id" is `after` (from the start when empty or not found).
nlohmann::json Page(const std::vector<nlohmann::json>& all,
                    const std::string& after, int limit);

}  // namespace lorad::server::openai

#endif  // LORAD_SERVER_OPENAI_FINE_TUNING_JSON_H_
