// The adapter registry: named, versioned LoRA adapters in the PEFT layout,
// kept under <data_dir>/adapter_registry/<name>/v<version>/ and recorded in
// the AdapterStore. The registry owns names and versions; it tells the
// worker's adapter pool what to hold (Worker.LoadAdapter / UnloadAdapter)
// and asks it where each adapter is resident.
#ifndef LORAD_SERVER_SERVING_ADAPTER_REGISTRY_H_
#define LORAD_SERVER_SERVING_ADAPTER_REGISTRY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lorad/common/env.h"
#include "lorad/v1/lorad.pb.h"
#include "options.h"
#include "store/adapter_store.h"
#include "store/job_store.h"
#include "worker_link/worker_client.h"

namespace lorad::server {

// Letters, digits, '.', '_' and '-', 1 to 64 of them, not starting with '.'
// or '-'. InvalidArgument naming the rule otherwise.
absl::Status ValidateAdapterName(const std::string& name);

// This class is thread-safe; changes to the registry are serialised.
class AdapterRegistry {
 public:
  // None are owned; all must outlive the registry. Files are read and
  // written through options.env, which also gives created_at.
  AdapterRegistry(const DaemonOptions& options, AdapterStore* store,
                  JobStore* jobs, WorkerClient* worker);

  // The Env the registry's files go through; uploads staged for Register
  // use it too.
  Env* env() const { return options_.env; }

  // A fresh empty directory for an upload to be staged in before Register.
  absl::StatusOr<std::string> NewStagingDir();

  // Validates the PEFT files in `src_dir` against `base_model` ("" = the
  // daemon's base model), copies them in as the next version of `name`
  // (version 1 for a new name) and has the worker load it onto the base
  // held as `quantization` ("" or nf4, int8: the base it was trained on),
  // replacing the old version atomically there. A bad adapter (or one the
  // worker refuses) is InvalidArgument naming the file and key, and nothing
  // changes; so is a failed copy (ResourceExhausted for a full disk), which
  // leaves no files of the new version behind. A worker that is down or does
  // not pool adapters yet loads it on first use.
  absl::StatusOr<v1::Adapter> Register(const std::string& name,
                                       const std::string& src_dir,
                                       const std::string& base_model,
                                       const std::string& source_job,
                                       bool pinned,
                                       const std::string& quantization = "");

  // Registers the adapter of a SUCCEEDED fine-tune job under `name` (empty:
  // the job's suffix, else its id). NotFound for an unknown job,
  // FailedPrecondition for one that has not succeeded.
  absl::StatusOr<v1::Adapter> RegisterJob(const std::string& job_id,
                                          const std::string& name, bool pinned);

  // Registers the adapter a fine-tune job has just written to `adapter_dir`
  // (before the job is marked SUCCEEDED), under its suffix, else its id.
  // Adapters of jobs are registered with the job's quantization.
  absl::StatusOr<v1::Adapter> RegisterTrained(const v1::FineTuneJob& job,
                                              const std::string& adapter_dir);

  // Registers the adapters of succeeded jobs that have none registered yet
  // (jobs that finished before the registry existed; call it only then, or
  // deleted adapters come back). The worker loads them on first use.
  void RegisterFinishedJobs();

  // Has the worker load the current version of a registered adapter again,
  // pinned or not.
  absl::StatusOr<v1::Adapter> Reload(const std::string& name, bool pinned);
  // Drops it from the worker's memory; it stays registered. The worker's
  // errors are returned as they are.
  absl::StatusOr<v1::Adapter> Unload(const std::string& name);
  // Unloads it, forgets it and removes its files.
  absl::Status Delete(const std::string& name);

  // The registered adapter, without residency. NotFound naming it.
  absl::StatusOr<v1::Adapter> Get(const std::string& name);
  // All adapters by name, with where the worker holds each.
  absl::StatusOr<std::vector<v1::Adapter>> List();

  // What a Generate request's `adapter` names: a registered adapter, or the
  // newest one registered from that job id. NotFound when neither.
  absl::StatusOr<v1::Adapter> ResolveForGenerate(const std::string& adapter);

  // Has the worker merge the adapter into its base and write a 16-bit HF
  // checkpoint under the adapter's directory.
  absl::StatusOr<v1::ExportMergedResponse> ExportMerged(
      const std::string& name, const std::string& dtype);

 private:
  std::string Root() const;
  std::string VersionDir(const std::string& name, int64_t version) const;
  absl::StatusOr<v1::Adapter> RegisterLocked(const std::string& name,
                                             const std::string& src_dir,
                                             const std::string& base_model,
                                             const std::string& source_job,
                                             bool pinned, bool load,
                                             const std::string& quantization)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Worker.LoadAdapter; OK when the worker is down or lacks the RPC.
  absl::Status LoadIntoWorker(const v1::Adapter& adapter);

  const DaemonOptions options_;
  const DataLayout layout_;
  AdapterStore* const store_;
  JobStore* const jobs_;
  WorkerClient* const worker_;
  absl::Mutex mu_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_SERVING_ADAPTER_REGISTRY_H_
