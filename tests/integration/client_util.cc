#include "client_util.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "lorad/internal/worker/v1/worker.grpc.pb.h"

namespace lorad::testing {

Client::Client(const std::string& address)
    : channel(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
      datasets(v1::Datasets::NewStub(channel)),
      fine_tuning(v1::FineTuning::NewStub(channel)),
      inference(v1::Inference::NewStub(channel)) {}

grpc::Status Upload(Client& client, const std::string& filename,
                    const std::string& contents, v1::Dataset* dataset,
                    int64_t declared_size, size_t chunk_bytes) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  auto writer = client.datasets->Upload(&context, dataset);
  v1::UploadDatasetRequest header;
  header.mutable_header()->set_filename(filename);
  header.mutable_header()->set_size_bytes(
      declared_size >= 0 ? declared_size
                         : static_cast<int64_t>(contents.size()));
  bool ok = writer->Write(header);
  for (size_t at = 0; ok && at < contents.size(); at += chunk_bytes) {
    v1::UploadDatasetRequest chunk;
    chunk.set_chunk(contents.substr(at, chunk_bytes));
    ok = writer->Write(chunk);
  }
  writer->WritesDone();
  return writer->Finish();
}

grpc::Status CreateJob(Client& client,
                       const v1::CreateFineTuneJobRequest& request,
                       v1::FineTuneJob* job) {
  grpc::ClientContext context;
  return client.fine_tuning->CreateJob(&context, request, job);
}

grpc::Status GetJob(Client& client, const std::string& job_id,
                    v1::FineTuneJob* job) {
  grpc::ClientContext context;
  v1::GetFineTuneJobRequest request;
  request.set_job_id(job_id);
  return client.fine_tuning->GetJob(&context, request, job);
}

v1::CreateFineTuneJobRequest TinyJobRequest(const std::string& dataset_id,
                                            int max_steps,
                                            int checkpoint_every) {
  v1::CreateFineTuneJobRequest request;
  request.set_model("tiny");
  request.set_training_file(dataset_id);
  v1::Hyperparameters* hp = request.mutable_hyperparameters();
  hp->set_rank(8);
  hp->set_alpha(16);
  hp->set_dropout(0);
  hp->set_learning_rate(1e-2f);
  hp->set_max_steps(max_steps);
  hp->set_batch_size(8);
  hp->set_max_seq_len(64);
  hp->set_checkpoint_every(checkpoint_every);
  hp->set_seed(7);
  return request;
}

std::string EventText(const v1::JobEvent& event) {
  return event.has_state() ? event.state().message() : event.log();
}

int NumberAfter(const std::string& text, const std::string& marker) {
  size_t at = text.find(marker);
  if (at == std::string::npos) return -1;
  at += marker.size();
  size_t end = at;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
  int n = -1;
  return absl::SimpleAtoi(text.substr(at, end - at), &n) ? n : -1;
}

grpc::Status UploadPairs(Client& client, v1::Dataset* dataset) {
  return Upload(client, "pairs.jsonl", PromptCompletionJsonl(8), dataset);
}

grpc::Status StartTinyJob(Client& client, int max_steps, int checkpoint_every,
                          v1::FineTuneJob* job) {
  v1::Dataset dataset;
  grpc::Status status = UploadPairs(client, &dataset);
  if (!status.ok()) return status;
  return CreateJob(
      client, TinyJobRequest(dataset.id(), max_steps, checkpoint_every), job);
}

grpc::Status Watch(Client& client, const std::string& job_id, int64_t after_seq,
                   std::vector<v1::JobEvent>* events, absl::Duration timeout,
                   const std::function<void(const v1::JobEvent&)>& on_event) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::WatchFineTuneJobRequest request;
  request.set_job_id(job_id);
  request.set_after_seq(after_seq);
  auto reader = client.fine_tuning->WatchJob(&context, request);
  v1::JobEvent event;
  while (reader->Read(&event)) {
    if (on_event) on_event(event);
    events->push_back(event);
  }
  return reader->Finish();
}

int WatchUntilStep(Client& client, const std::string& job_id, int step) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
  v1::WatchFineTuneJobRequest request;
  request.set_job_id(job_id);
  auto reader = client.fine_tuning->WatchJob(&context, request);
  v1::JobEvent event;
  int reached = 0;
  while (reader->Read(&event)) {
    if (event.has_step()) reached = event.step().step();
    if (reached >= step) context.TryCancel();
  }
  (void)reader->Finish();
  return reached;
}

std::vector<v1::TrainStep> Steps(const std::vector<v1::JobEvent>& events) {
  std::vector<v1::TrainStep> steps;
  for (const v1::JobEvent& e : events) {
    if (e.has_step()) steps.push_back(e.step());
  }
  return steps;
}

std::string PromptCompletionJsonl(int n) {
  static const char* const kWords[] = {"apple", "river",  "stone", "cloud",
                                       "maple", "copper", "tiger", "violet"};
  std::string out;
  for (int i = 0; i < n; ++i) {
    absl::StrAppendFormat(&out,
                          "{\"prompt\": \"Q%d: say %s.\", \"completion\": \" "
                          "%s %s %s\"}\n",
                          i, kWords[i % 8], kWords[i % 8], kWords[(i + 3) % 8],
                          kWords[(i + 5) % 8]);
  }
  return out;
}

int64_t WorkerPid(const std::string& data_dir) {
  auto channel =
      grpc::CreateChannel(absl::StrCat("unix:", data_dir, "/run/worker.sock"),
                          grpc::InsecureChannelCredentials());
  auto stub = worker::v1::Worker::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  worker::v1::PingRequest request;
  worker::v1::PingResponse response;
  if (!stub->Ping(&context, request, &response).ok()) return -1;
  return response.pid();
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("code ", status.error_code(), ": ",
                      status.error_message());
}

}  // namespace lorad::testing
