#include "serving/adapter_registry.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "jobs/job_validation.h"
#include "lorad/common/excerpt.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/peft_adapter.h"
#include "lorad/model/tiny_model.h"

namespace lorad::server {
namespace {

constexpr char kNotLoaded[] = "not loaded";
constexpr char kUnknown[] = "unknown";

// How long a change waits for a worker that is (re)starting before leaving
// the load to the first request that needs it.
constexpr absl::Duration kWorkerWait = absl::Seconds(10);

// Errors that mean "the worker cannot be asked now", not "it refused".
bool WorkerAbsent(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsUnimplemented(status) ||
         absl::IsDeadlineExceeded(status) || absl::IsCancelled(status);
}

// How long a call waits for a worker that is (re)starting.
CallOptions WaitingUpTo(absl::Duration wait) {
  CallOptions options;
  options.ready_wait = wait;
  return options;
}

absl::Status CopyAdapterFiles(Env& env, const std::string& from,
                              const std::string& to) {
  LORAD_RETURN_IF_ERROR(env.CreateDirs(to));
  for (const char* file :
       {model::kAdapterConfigFile, model::kAdapterWeightsFile}) {
    LORAD_RETURN_IF_ERROR(env.CopyFileAtomic(absl::StrCat(from, "/", file),
                                             absl::StrCat(to, "/", file)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateAdapterName(const std::string& name) {
  return ValidateName("adapter name", name);
}

AdapterRegistry::AdapterRegistry(const DaemonOptions& options,
                                 AdapterStore* store, JobStore* jobs,
                                 WorkerClient* worker)
    : options_(options),
      layout_(options.data_dir),
      store_(store),
      jobs_(jobs),
      worker_(worker) {}

std::string AdapterRegistry::Root() const {
  return layout_.root() + "/adapter_registry";
}

std::string AdapterRegistry::VersionDir(const std::string& name,
                                        int64_t version) const {
  return absl::StrCat(Root(), "/", name, "/v", version);
}

absl::StatusOr<std::string> AdapterRegistry::NewStagingDir() {
  std::random_device random;
  const std::string dir = absl::StrFormat(
      "%s/.staging/%08x%08x", Root(), uint32_t{random()}, uint32_t{random()});
  LORAD_RETURN_IF_ERROR(env()->CreateDirs(dir));
  return dir;
}

absl::StatusOr<v1::Adapter> AdapterRegistry::Register(
    const std::string& name, const std::string& src_dir,
    const std::string& base_model, const std::string& source_job, bool pinned,
    const std::string& quantization) {
  absl::MutexLock lock(&mu_);
  return RegisterLocked(name, src_dir, base_model, source_job, pinned,
                        /*load=*/true, quantization);
}

absl::StatusOr<v1::Adapter> AdapterRegistry::RegisterLocked(
    const std::string& name, const std::string& src_dir,
    const std::string& base_model, const std::string& source_job, bool pinned,
    bool load, const std::string& quantization) {
  LORAD_RETURN_IF_ERROR(ValidateAdapterName(name));
  if (!quantization.empty() && quantization != "nf4" &&
      quantization != "int8") {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantization must be nf4 or int8, got ", QuotedExcerpt(quantization)));
  }
  const std::string model =
      base_model.empty() ? options_.base_model : base_model;
  absl::StatusOr<model::ModelConfig> config = model::ModelConfigOf(model);
  if (!config.ok()) {
    return absl::Status(
        config.status().code(),
        absl::StrCat("base model ", model, ": ", config.status().message()));
  }
  absl::StatusOr<model::PeftAdapter> peft =
      model::OpenPeftAdapter(src_dir, *config);
  if (absl::IsNotFound(peft.status())) {
    // A file missing from an upload is the client's error.
    return absl::InvalidArgumentError(peft.status().message());
  }
  LORAD_RETURN_IF_ERROR(peft.status());

  int64_t version = 1;
  absl::StatusOr<v1::Adapter> existing = store_->GetAdapter(name);
  if (existing.ok()) {
    version = existing->version() + 1;
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  v1::Adapter adapter;
  adapter.set_name(name);
  adapter.set_version(version);
  adapter.set_rank(static_cast<int32_t>(peft->spec.rank));
  adapter.set_alpha(static_cast<float>(peft->spec.alpha));
  for (const std::string& t : peft->spec.target_modules) {
    adapter.add_target_modules(t);
  }
  adapter.set_size_bytes(peft->size_bytes);
  adapter.set_source_job(source_job);
  adapter.set_created_at_unix(absl::ToUnixSeconds(env()->Now()));
  adapter.set_pinned(pinned);
  adapter.set_base_model(model);
  adapter.set_path(VersionDir(name, version));
  // nf4 is the default and stays unset, as in records made before int8.
  if (quantization == "int8") adapter.set_quantization(quantization);

  // A leftover of a failed attempt goes first.
  absl::Status loaded = env()->RemoveTree(adapter.path());
  if (loaded.ok()) loaded = CopyAdapterFiles(*env(), src_dir, adapter.path());
  if (loaded.ok() && load) loaded = LoadIntoWorker(adapter);
  if (loaded.ok()) loaded = store_->PutAdapter(adapter);
  if (!loaded.ok()) {
    env()->RemoveTree(adapter.path()).IgnoreError();
    return loaded;
  }
  return adapter;
}

absl::Status AdapterRegistry::LoadIntoWorker(const v1::Adapter& adapter) {
  worker::v1::LoadAdapterRequest request;
  request.set_model(adapter.base_model());
  request.set_model_cache_dir(layout_.ModelsDir());
  request.set_name(adapter.name());
  request.set_version(adapter.version());
  request.set_adapter_dir(adapter.path());
  request.set_pinned(adapter.pinned());
  request.set_quantization(adapter.quantization());
  absl::Status status =
      worker_->LoadAdapter(request, WaitingUpTo(kWorkerWait)).status();
  if (status.ok() || WorkerAbsent(status)) return absl::OkStatus();
  return absl::Status(status.code(),
                      absl::StrCat("the worker refused ", adapter.name(), ": ",
                                   status.message()));
}

absl::StatusOr<v1::Adapter> AdapterRegistry::RegisterJob(
    const std::string& job_id, const std::string& name, bool pinned) {
  LORAD_RETURN_IF_ERROR(ValidateName("job_id", job_id));
  if (!name.empty()) LORAD_RETURN_IF_ERROR(ValidateAdapterName(name));
  LORAD_ASSIGN_OR_RETURN(v1::FineTuneJob job, jobs_->GetJob(job_id));
  if (job.state() != v1::SUCCEEDED || job.adapter_path().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is ", v1::JobState_Name(job.state()),
                     "; its adapter can be loaded once it has SUCCEEDED"));
  }
  std::string chosen = name;
  if (chosen.empty()) chosen = job.suffix().empty() ? job.id() : job.suffix();
  return Register(chosen, job.adapter_path(), job.model(), job.id(), pinned,
                  job.hyperparameters().quantization());
}

absl::StatusOr<v1::Adapter> AdapterRegistry::RegisterTrained(
    const v1::FineTuneJob& job, const std::string& adapter_dir) {
  return Register(job.suffix().empty() ? job.id() : job.suffix(), adapter_dir,
                  job.model(), job.id(), /*pinned=*/false,
                  job.hyperparameters().quantization());
}

void AdapterRegistry::RegisterFinishedJobs() {
  absl::StatusOr<std::vector<v1::FineTuneJob>> jobs =
      jobs_->JobsInStates({v1::SUCCEEDED});
  absl::StatusOr<std::vector<v1::Adapter>> adapters = store_->ListAdapters();
  if (!jobs.ok() || !adapters.ok()) return;
  for (const v1::FineTuneJob& job : *jobs) {
    bool registered = false;
    for (const v1::Adapter& a : *adapters) {
      registered |= a.source_job() == job.id();
    }
    if (registered || job.adapter_path().empty()) continue;
    absl::StatusOr<v1::Adapter> added;
    {
      absl::MutexLock lock(&mu_);
      added = RegisterLocked(job.suffix().empty() ? job.id() : job.suffix(),
                             job.adapter_path(), job.model(), job.id(),
                             /*pinned=*/false, /*load=*/false,
                             job.hyperparameters().quantization());
    }
    if (!added.ok()) {
      std::fprintf(stderr, "lorad: cannot register the adapter of %s: %s\n",
                   job.id().c_str(), added.status().ToString().c_str());
    }
  }
}

absl::StatusOr<v1::Adapter> AdapterRegistry::Reload(const std::string& name,
                                                    bool pinned) {
  LORAD_RETURN_IF_ERROR(ValidateAdapterName(name));
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(v1::Adapter adapter, store_->GetAdapter(name));
  adapter.set_pinned(pinned);
  LORAD_RETURN_IF_ERROR(LoadIntoWorker(adapter));
  LORAD_RETURN_IF_ERROR(store_->PutAdapter(adapter));
  return adapter;
}

absl::StatusOr<v1::Adapter> AdapterRegistry::Unload(const std::string& name) {
  LORAD_RETURN_IF_ERROR(ValidateAdapterName(name));
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(v1::Adapter adapter, store_->GetAdapter(name));
  worker::v1::UnloadAdapterRequest request;
  request.set_name(name);
  absl::Status status =
      worker_->UnloadAdapter(request, WaitingUpTo(absl::Seconds(1))).status();
  // A worker that is not running, or does not hold it, has nothing to free.
  if (!status.ok() && !absl::IsUnavailable(status) &&
      !absl::IsNotFound(status)) {
    return status;
  }
  adapter.set_residency(kNotLoaded);
  return adapter;
}

absl::Status AdapterRegistry::Delete(const std::string& name) {
  LORAD_RETURN_IF_ERROR(ValidateAdapterName(name));
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(v1::Adapter adapter, store_->GetAdapter(name));
  worker::v1::UnloadAdapterRequest request;
  request.set_name(name);
  absl::Status status =
      worker_->UnloadAdapter(request, WaitingUpTo(absl::Seconds(1))).status();
  if (!status.ok() && !WorkerAbsent(status) && !absl::IsNotFound(status)) {
    return status;
  }
  LORAD_RETURN_IF_ERROR(store_->DeleteAdapter(name));
  // The record is gone; files a failed removal leaves are only disk space.
  env()->RemoveTree(absl::StrCat(Root(), "/", name)).IgnoreError();
  return absl::OkStatus();
}

absl::StatusOr<v1::Adapter> AdapterRegistry::Get(const std::string& name) {
  LORAD_RETURN_IF_ERROR(ValidateAdapterName(name));
  return store_->GetAdapter(name);
}

absl::StatusOr<std::vector<v1::Adapter>> AdapterRegistry::List() {
  LORAD_ASSIGN_OR_RETURN(std::vector<v1::Adapter> adapters,
                         store_->ListAdapters());
  absl::StatusOr<worker::v1::ListWorkerAdaptersResponse> response =
      worker_->ListAdapters(WaitingUpTo(absl::Seconds(1)));
  absl::flat_hash_map<std::string, const worker::v1::WorkerAdapterInfo*> held;
  if (response.ok()) {
    for (const auto& info : response->adapters()) held[info.name()] = &info;
  }
  for (v1::Adapter& adapter : adapters) {
    if (!response.ok()) {
      adapter.set_residency(kUnknown);
      continue;
    }
    auto it = held.find(adapter.name());
    if (it == held.end() || it->second->version() != adapter.version()) {
      adapter.set_residency(kNotLoaded);
    } else {
      adapter.set_residency(it->second->residency());
    }
  }
  return adapters;
}

absl::StatusOr<v1::Adapter> AdapterRegistry::ResolveForGenerate(
    const std::string& adapter) {
  if (ValidateAdapterName(adapter).ok()) {
    absl::StatusOr<v1::Adapter> found = store_->GetAdapter(adapter);
    if (!absl::IsNotFound(found.status())) return found;
  }
  LORAD_ASSIGN_OR_RETURN(std::vector<v1::Adapter> all, store_->ListAdapters());
  const v1::Adapter* newest = nullptr;
  for (const v1::Adapter& a : all) {
    if (a.source_job() == adapter &&
        (newest == nullptr ||
         a.created_at_unix() > newest->created_at_unix())) {
      newest = &a;
    }
  }
  if (newest == nullptr) {
    return absl::NotFoundError(absl::StrCat("adapter ", adapter, " not found"));
  }
  return *newest;
}

absl::StatusOr<v1::ExportMergedResponse> AdapterRegistry::ExportMerged(
    const std::string& name, const std::string& dtype) {
  if (!dtype.empty() && dtype != "bfloat16" && dtype != "float16") {
    return absl::InvalidArgumentError(absl::StrCat(
        "dtype must be bfloat16 or float16, got ", QuotedExcerpt(dtype)));
  }
  LORAD_ASSIGN_OR_RETURN(v1::Adapter adapter, Get(name));
  worker::v1::ExportMergedRequest request;
  request.set_model(adapter.base_model());
  request.set_model_cache_dir(layout_.ModelsDir());
  request.set_adapter_dir(adapter.path());
  request.set_out_dir(adapter.path() + "/merged");
  request.set_dtype(dtype.empty() ? "bfloat16" : dtype);
  request.set_quantization(adapter.quantization());
  LORAD_ASSIGN_OR_RETURN(
      worker::v1::ExportMergedResponse response,
      worker_->ExportMerged(request, WaitingUpTo(kWorkerWait)));
  v1::ExportMergedResponse out;
  {
    absl::MutexLock lock(&mu_);
    // Record it on the version it was made from, if that is still current.
    absl::StatusOr<v1::Adapter> current = store_->GetAdapter(name);
    if (current.ok() && current->version() == adapter.version()) {
      current->set_merged_path(response.out_dir());
      LORAD_RETURN_IF_ERROR(store_->PutAdapter(*current));
      adapter = *current;
    }
  }
  *out.mutable_adapter() = adapter;
  out.set_path(response.out_dir());
  out.set_size_bytes(response.size_bytes());
  return out;
}

}  // namespace lorad::server
