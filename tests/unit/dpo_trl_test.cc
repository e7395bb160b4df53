// DPO trained by lorad's worker against TRL's DPOTrainer: a small random
// Llama (dense, so both sides compute the same base) is trained here for a
// few DPO steps; TRL then evaluates the adapter lorad wrote, loaded through
// PEFT, on the same validation pairs. The eval loss, the rewards, margin,
// accuracy and log-probs lorad reported must be TRL's, for the sigmoid loss
// on text pairs and the IPO loss on conversational pairs (through a chat
// template). Both sides compute in fp32 (TRL's bf16 autocast off), where
// they agree to about 1e-7; bf16 autocast alone moves TRL's rewards by
// ~1e-4. tests/golden/dpo_peer.py runs TRL.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/tokenizer.h"
#include "lorad/worker/llama_model.h"
#include "lorad/worker/trainer.h"
#include "nlohmann/json.hpp"

namespace lorad::worker {
namespace {

const std::string kScript =
    std::string(LORAD_SOURCE_DIR) + "/tests/golden/dpo_peer.py";

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool HavePython() {
  static const bool have =
      std::filesystem::exists(LORAD_PYTHON) &&
      std::system((std::string(LORAD_PYTHON) +
                   " -c 'import trl, peft, datasets' 2>/dev/null")
                      .c_str()) == 0;
  return have;
}

constexpr char kTemplate[] =
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
    "{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

std::string TextRows(int first, int count) {
  const char* rows[][3] = {
      {"The sky is", " blue", " made of green cheese"},
      {"2 + 2 =", " 4", " 5, or so"},
      {"Water is", " wet", " dry"},
      {"Cats say", " meow", " woof woof"},
      {"The sun rises in the", " east", " west"},
      {"Fire is", " hot", " cold"},
      {"Snow is", " white", " black as night"},
      {"Ice is", " frozen water", " sand"},
  };
  std::string out;
  for (int i = first; i < first + count; ++i) {
    nlohmann::json row = {{"prompt", rows[i][0]},
                          {"chosen", rows[i][1]},
                          {"rejected", rows[i][2]}};
    out += row.dump() + "\n";
  }
  return out;
}

std::string ConvRows(int first, int count) {
  const char* rows[][3] = {
      {"Hello!", "Hi, how can I help?", "Go away."},
      {"What is 7 times 6?", "42.", "Seventy-six, I believe."},
      {"Name a colour.", "Blue.", "No."},
      {"Is water wet?", "Yes.", "Water is a kind of rock."},
      {"Say thanks.", "Thank you!", "Why?"},
      {"Count to three.", "1, 2, 3.", "3, 2."},
      {"Greet me.", "Good morning!", "..."},
      {"Spell cat.", "C-A-T.", "D-O-G."},
  };
  std::string out;
  for (int i = first; i < first + count; ++i) {
    nlohmann::json system = {{"role", "system"}, {"content", "Be brief."}};
    nlohmann::json user = {{"role", "user"}, {"content", rows[i][0]}};
    nlohmann::json prompt = nlohmann::json::array({user});
    if (i % 2 == 1) prompt = nlohmann::json::array({system, user});
    nlohmann::json row = {
        {"prompt", prompt},
        {"chosen", {{{"role", "assistant"}, {"content", rows[i][1]}}}},
        {"rejected", {{{"role", "assistant"}, {"content", rows[i][2]}}}}};
    out += row.dump() + "\n";
  }
  return out;
}

class DpoTrlTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "/dpo_trl");
    if (!HavePython()) return;
    std::filesystem::remove_all(*dir_);
    const std::string model = *dir_ + "/model";
    const std::string cmd =
        absl::StrCat(LORAD_PYTHON, " ", kScript, " make-model ", model, " >",
                     *dir_, "_make.log 2>&1");
    if (std::system(cmd.c_str()) != 0) return;
    nlohmann::json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                             {"bos_token", "<|begin_of_text|>"},
                             {"eos_token", "<|end_of_text|>"},
                             {"pad_token", "<|pad|>"},
                             {"chat_template", kTemplate}};
    ready_ =
        WriteFileAtomic(model + "/tokenizer.json",
                        model::MakeByteLevelTokenizerJson())
            .ok() &&
        WriteFileAtomic(model + "/tokenizer_config.json", config.dump()).ok() &&
        WriteFileAtomic(*dir_ + "/train_text.jsonl", TextRows(0, 4)).ok() &&
        WriteFileAtomic(*dir_ + "/eval_text.jsonl", TextRows(4, 4)).ok() &&
        WriteFileAtomic(*dir_ + "/train_conv.jsonl", ConvRows(0, 4)).ok() &&
        WriteFileAtomic(*dir_ + "/eval_conv.jsonl", ConvRows(4, 4)).ok();
  }

  void SetUp() override {
    if (!HavePython()) GTEST_SKIP() << "venv with trl/peft/datasets missing";
    ASSERT_TRUE(ready_) << Read(*dir_ + "_make.log");
  }

  static std::string* dir_;
  static bool ready_;
};

std::string* DpoTrlTest::dir_ = nullptr;
bool DpoTrlTest::ready_ = false;

TEST_P(DpoTrlTest, EvaluationMatchesTrlOnTheAdapterTrainedHere) {
  const std::string loss_type = GetParam();
  const std::string rows = loss_type == "sigmoid" ? "text" : "conv";
  const std::string model_dir = *dir_ + "/model";
  LoadOptions o;
  o.quantize = false;
  auto model = LlamaModel::Load(model_dir, o);
  ASSERT_TRUE(model.ok()) << model.status();

  TrainJob job;
  job.job_id = "dpo_" + loss_type;
  job.base_model_name = model_dir;
  job.training_path = *dir_ + "/train_" + rows + ".jsonl";
  job.validation_path = *dir_ + "/eval_" + rows + ".jsonl";
  job.job_dir = *dir_ + "/job_" + loss_type;
  job.adapter_dir = *dir_ + "/adapter_" + loss_type;
  auto& hp = job.hp;
  hp.set_method("dpo");
  hp.set_dpo_loss_type(loss_type);
  hp.set_dpo_beta(loss_type == "sigmoid" ? 0.1f : 0.5f);
  hp.set_rank(4);
  hp.set_alpha(8);
  hp.set_dropout(0.1f);  // off in DPO, as in TRL
  for (const char* t : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                        "up_proj", "down_proj"}) {
    hp.add_target_modules(t);
  }
  hp.set_learning_rate(2e-2f);
  hp.set_batch_size(2);
  hp.set_gradient_accumulation(1);
  hp.set_max_grad_norm(1.0f);
  hp.set_lr_scheduler("linear");
  hp.set_max_seq_len(64);
  hp.set_seed(11);
  hp.set_max_steps(6);
  lorad::worker::v1::EvalResult eval;
  int evals = 0;
  TrainCallbacks cb;
  cb.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    if (e.has_eval()) {
      eval = e.eval();
      ++evals;
    }
  };
  absl::Status trained = RunTraining(**model, job, cb);
  ASSERT_TRUE(trained.ok()) << trained;
  ASSERT_EQ(evals, 1);
  ASSERT_TRUE(eval.has_dpo());
  // Trained, the adapter tells the pairs apart: the comparison is not of
  // zeros.
  ASSERT_GT(std::abs(eval.dpo().reward_margin()), 1e-3f);

  const std::string out = *dir_ + "/trl_" + loss_type + ".json";
  const std::string cmd = absl::StrCat(
      LORAD_PYTHON, " ", kScript, " trl-eval ", model_dir, " ", job.adapter_dir,
      " ", job.validation_path, " ", hp.dpo_beta(), " ", loss_type, " ",
      hp.batch_size(), " ", hp.max_seq_len(), " ", out, " >", out, ".log 2>&1");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << Read(out + ".log");
  const nlohmann::json trl = nlohmann::json::parse(Read(out));
  const auto& d = eval.dpo();
  EXPECT_NEAR(eval.eval_loss(), trl["eval_loss"].get<double>(), 1e-5) << trl;
  EXPECT_NEAR(d.rewards_chosen(), trl["eval_rewards/chosen"].get<double>(),
              1e-5);
  EXPECT_NEAR(d.rewards_rejected(), trl["eval_rewards/rejected"].get<double>(),
              1e-5);
  EXPECT_NEAR(d.reward_margin(), trl["eval_rewards/margins"].get<double>(),
              1e-5);
  EXPECT_NEAR(d.reward_accuracy(), trl["eval_rewards/accuracies"].get<double>(),
              1e-6);
  EXPECT_NEAR(d.logps_chosen(), trl["eval_logps/chosen"].get<double>(), 1e-4);
  EXPECT_NEAR(d.logps_rejected(), trl["eval_logps/rejected"].get<double>(),
              1e-4);
}

INSTANTIATE_TEST_SUITE_P(LossTypes, DpoTrlTest,
                         ::testing::Values("sigmoid", "ipo"));

}  // namespace
}  // namespace lorad::worker
