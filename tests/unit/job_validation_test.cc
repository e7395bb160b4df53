// Issue 15's job options: method (sft | dpo), dpo_beta, dpo_loss_type,
// quantization and the paged optimizers, each refused with
// INVALID_ARGUMENT naming its field when bad, and the dataset's format
// checked against the method.
#include "jobs/job_validation.h"

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "store/dataset_store.h"
#include "store/db.h"
#include "test_dir.h"

namespace lorad::server {
namespace {

v1::Hyperparameters Defaults() {
  v1::Hyperparameters hp;
  EXPECT_TRUE(FillDefaultsAndValidate(/*present=*/false, hp).ok());
  return hp;
}

v1::Hyperparameters Dpo() {
  v1::Hyperparameters hp = Defaults();
  hp.set_method("dpo");
  return hp;
}

// `hp` is refused with INVALID_ARGUMENT whose message holds `needle`.
void ExpectRefused(v1::Hyperparameters hp, const std::string& needle) {
  absl::Status s = FillDefaultsAndValidate(true, hp);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << needle << ": " << s;
  EXPECT_TRUE(absl::StrContains(s.message(), needle)) << s;
}

TEST(JobValidationTest, MethodDefaultsToSftAndDpoFillsItsDefaults) {
  v1::Hyperparameters hp = Defaults();
  EXPECT_EQ(hp.method(), "sft");
  EXPECT_EQ(hp.quantization(), "nf4");
  EXPECT_EQ(hp.dpo_beta(), 0);
  EXPECT_EQ(hp.dpo_loss_type(), "");
  hp = Dpo();
  ASSERT_TRUE(FillDefaultsAndValidate(true, hp).ok());
  EXPECT_FLOAT_EQ(hp.dpo_beta(), kDefaultDpoBeta);
  EXPECT_EQ(hp.dpo_loss_type(), "sigmoid");
  hp = Dpo();
  hp.set_dpo_beta(0.5f);
  hp.set_dpo_loss_type("ipo");
  hp.set_quantization("int8");
  ASSERT_TRUE(FillDefaultsAndValidate(true, hp).ok());
  EXPECT_FLOAT_EQ(hp.dpo_beta(), 0.5f);
  EXPECT_EQ(hp.dpo_loss_type(), "ipo");
  EXPECT_EQ(hp.quantization(), "int8");
  hp = Dpo();
  hp.set_dpo_beta(kMaxDpoBeta);
  EXPECT_TRUE(FillDefaultsAndValidate(true, hp).ok());
}

TEST(JobValidationTest, RefusesAnUnknownMethod) {
  v1::Hyperparameters hp = Defaults();
  hp.set_method("ppo");
  ExpectRefused(hp, "hyperparameters.method must be one of sft, dpo, got");
  ExpectRefused(hp, "ppo");
}

TEST(JobValidationTest, RefusesDpoBetaOutOfRange) {
  const float bad[] = {-0.1f,         -1e9f,
                       std::nanf(""), std::numeric_limits<float>::infinity(),
                       100.5f,        1e9f};
  for (float beta : bad) {
    v1::Hyperparameters hp = Dpo();
    hp.set_dpo_beta(beta);
    ExpectRefused(hp,
                  "hyperparameters.dpo_beta must be a finite number in "
                  "(0, 100]");
  }
}

TEST(JobValidationTest, RefusesAnUnknownDpoLossType) {
  v1::Hyperparameters hp = Dpo();
  hp.set_dpo_loss_type("hinge");
  ExpectRefused(hp,
                "hyperparameters.dpo_loss_type must be one of sigmoid, ipo");
  ExpectRefused(hp, "hinge");
}

TEST(JobValidationTest, RefusesDpoFieldsWithSft) {
  v1::Hyperparameters hp = Defaults();
  hp.set_dpo_beta(0.1f);
  ExpectRefused(hp,
                "hyperparameters.dpo_beta must be unset unless method is "
                "dpo");
  hp = Defaults();
  hp.set_method("sft");
  hp.set_dpo_beta(std::nanf(""));
  ExpectRefused(hp, "hyperparameters.dpo_beta must be unset");
  hp = Defaults();
  hp.set_dpo_loss_type("ipo");
  ExpectRefused(hp,
                "hyperparameters.dpo_loss_type must be unset unless "
                "method is dpo");
}

TEST(JobValidationTest, RefusesPackingWithDpo) {
  v1::Hyperparameters hp = Dpo();
  hp.set_packing(true);
  ExpectRefused(hp, "hyperparameters.packing must be false with method dpo");
  hp.set_method("sft");
  EXPECT_TRUE(FillDefaultsAndValidate(true, hp).ok());
}

TEST(JobValidationTest, RefusesAnUnknownQuantization) {
  v1::Hyperparameters hp = Defaults();
  hp.set_quantization("fp8");
  ExpectRefused(hp, "hyperparameters.quantization must be one of nf4, int8");
  ExpectRefused(hp, "fp8");
}

TEST(JobValidationTest, AcceptsThePagedOptimizersAndRefusesOthers) {
  for (const char* ok : {"paged_adamw", "paged_adamw_8bit"}) {
    v1::Hyperparameters hp = Defaults();
    hp.set_optimizer(ok);
    EXPECT_TRUE(FillDefaultsAndValidate(true, hp).ok()) << ok;
  }
  v1::Hyperparameters hp = Defaults();
  hp.set_optimizer("paged_lion");
  ExpectRefused(hp,
                "hyperparameters.optimizer must be one of adamw, adamw_8bit, "
                "paged_adamw, paged_adamw_8bit");
  ExpectRefused(hp, "paged_lion");
}

class DatasetMethodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Db::Open(FreshTestDir("job_validation_test") + "/lorad.db");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    auto store = DatasetStore::Open(db_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    Put("ds-pairs", "preference");
    Put("ds-chat", "chat");
    Put("ds-text", "text");
  }

  void Put(const std::string& id, const std::string& format) {
    v1::Dataset ds;
    ds.set_id(id);
    ds.set_format(format);
    ds.set_num_examples(4);
    ASSERT_TRUE(store_->PutDataset(ds).ok());
  }

  absl::Status Validate(const std::string& method, const std::string& train,
                        const std::string& validation) {
    v1::FineTuneJob job;
    job.set_training_file(train);
    job.set_validation_file(validation);
    if (!method.empty()) {
      *job.mutable_hyperparameters() = Defaults();
      job.mutable_hyperparameters()->set_method(method);
    }
    return ValidateJob(*store_, !method.empty(), job);
  }

  std::unique_ptr<Db> db_;
  std::unique_ptr<DatasetStore> store_;
};

TEST_F(DatasetMethodTest, DpoTrainsOnPreferenceDatasets) {
  EXPECT_TRUE(Validate("dpo", "ds-pairs", "").ok());
  EXPECT_TRUE(Validate("dpo", "ds-pairs", "ds-pairs").ok());
  EXPECT_TRUE(Validate("sft", "ds-chat", "ds-text").ok());
  EXPECT_TRUE(Validate("", "ds-text", "").ok());
}

TEST_F(DatasetMethodTest, DpoRefusesANonPreferenceTrainingFile) {
  absl::Status s = Validate("dpo", "ds-chat", "");
  ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(),
                                "training_file: dataset ds-chat "
                                "is in format \"chat\""))
      << s;
  EXPECT_TRUE(absl::StrContains(s.message(),
                                "method \"dpo\" needs format \"preference\""))
      << s;
}

TEST_F(DatasetMethodTest, DpoRefusesANonPreferenceValidationFile) {
  absl::Status s = Validate("dpo", "ds-pairs", "ds-text");
  ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(),
                                "validation_file: dataset ds-text "
                                "is in format \"text\""))
      << s;
}

TEST_F(DatasetMethodTest, SftRefusesPreferenceDatasets) {
  for (const std::string method : {"sft", ""}) {
    absl::Status s = Validate(method, "ds-pairs", "");
    ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(),
                                  "training_file: dataset ds-pairs is in "
                                  "format \"preference\", which needs method "
                                  "\"dpo\"; method \"sft\" trains on format "
                                  "\"text\", \"prompt_completion\""))
        << s;
  }
  absl::Status s = Validate("sft", "ds-chat", "ds-pairs");
  ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(),
                                "validation_file: dataset "
                                "ds-pairs is in format "
                                "\"preference\""))
      << s;
}

TEST_F(DatasetMethodTest, HyperparameterErrorsComeBeforeTheFormatCheck) {
  v1::FineTuneJob job;
  job.set_training_file("ds-chat");
  *job.mutable_hyperparameters() = Dpo();
  job.mutable_hyperparameters()->set_dpo_loss_type("hinge");
  absl::Status s = ValidateJob(*store_, true, job);
  ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "dpo_loss_type")) << s;
}

}  // namespace
}  // namespace lorad::server
