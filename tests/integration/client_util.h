// gRPC client helpers shared by the integration tests.
#ifndef LORAD_TESTS_INTEGRATION_CLIENT_UTIL_H_
#define LORAD_TESTS_INTEGRATION_CLIENT_UTIL_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/status.h"
#include "lorad/v1/lorad.grpc.pb.h"

namespace lorad::testing {

// Stubs for one daemon.
struct Client {
  explicit Client(const std::string& address);

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Datasets::Stub> datasets;
  std::unique_ptr<v1::FineTuning::Stub> fine_tuning;
  std::unique_ptr<v1::Inference::Stub> inference;
};

// Streams `contents` as one header and chunks of `chunk_bytes`. The header
// announces `declared_size` (the real size when negative).
grpc::Status Upload(Client& client, const std::string& filename,
                    const std::string& contents, v1::Dataset* dataset,
                    int64_t declared_size = -1, size_t chunk_bytes = 1000);

grpc::Status CreateJob(Client& client,
                       const v1::CreateFineTuneJobRequest& request,
                       v1::FineTuneJob* job);
grpc::Status GetJob(Client& client, const std::string& job_id,
                    v1::FineTuneJob* job);

// Uploads PromptCompletionJsonl(8) as "pairs.jsonl".
grpc::Status UploadPairs(Client& client, v1::Dataset* dataset);

// A small memorisation job on the built-in tiny model.
v1::CreateFineTuneJobRequest TinyJobRequest(const std::string& dataset_id,
                                            int max_steps,
                                            int checkpoint_every);

// Uploads PromptCompletionJsonl(8) and creates TinyJobRequest on it: the
// set-up of most training tests.
grpc::Status StartTinyJob(Client& client, int max_steps, int checkpoint_every,
                          v1::FineTuneJob* job);

// Watches a job from `after_seq` until the stream ends, handing each event to
// `on_event` (if set) as it arrives and collecting them in `events`.
grpc::Status Watch(
    Client& client, const std::string& job_id, int64_t after_seq,
    std::vector<v1::JobEvent>* events,
    absl::Duration timeout = absl::Minutes(20),
    const std::function<void(const v1::JobEvent&)>& on_event = nullptr);

// What the worker logs when a run resumes, before the checkpoint's step.
inline constexpr char kResumedLog[] = "resumed from the checkpoint at step ";

// Watches a job until one of its step events reaches `step`, then stops
// watching; returns the last step seen (less than `step` when the job ended
// first or five minutes passed).
int WatchUntilStep(Client& client, const std::string& job_id, int step);

// The text of a state change or log event ("" for other kinds).
std::string EventText(const v1::JobEvent& event);

// The number right after `marker` in `text`, or -1 when `marker` is absent
// or no digits follow it.
int NumberAfter(const std::string& text, const std::string& marker);

// The step events among `events`, in order.
std::vector<v1::TrainStep> Steps(const std::vector<v1::JobEvent>& events);

// A prompt/completion JSONL dataset of `n` short pairs.
std::string PromptCompletionJsonl(int n);

// The pid the worker listening on <data_dir>/run/worker.sock reports, or -1.
int64_t WorkerPid(const std::string& data_dir);

// Readable form of a status, for assertion messages.
std::string Describe(const grpc::Status& status);

}  // namespace lorad::testing

#endif  // LORAD_TESTS_INTEGRATION_CLIENT_UTIL_H_
