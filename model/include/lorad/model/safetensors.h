// Reading and writing the safetensors format (Hugging Face): an 8-byte
// little-endian header length N, N bytes of JSON describing every tensor
// (dtype, shape, data_offsets relative to the end of the header) plus an
// optional "__metadata__" string map, then the raw little-endian data.
//
// Files are memory-mapped read-only; TensorInfo::data points into the
// mapping and stays valid as long as the SafetensorsFile / SafetensorsModel
// that returned it is alive. Nothing here aborts on bad input: every problem
// with a file is an absl::Status naming the file and what is wrong.
#ifndef LORAD_MODEL_SAFETENSORS_H_
#define LORAD_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lorad::model {

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL".
// InvalidArgument for anything else.
absl::StatusOr<DType> ParseDType(std::string_view s);
// The safetensors spelling of `d` (the inverse of ParseDType).
std::string_view DTypeName(DType d);
// Bytes per element.
int64_t DTypeSize(DType d);

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // nbytes bytes, not necessarily aligned
  int64_t nbytes = 0;
  // Product of `shape` (1 for a scalar).
  int64_t numel() const;
};

// One .safetensors file. Thread-safe after Open: every method is const.
class SafetensorsFile {
 public:
  // Maps `path` read-only and validates the header: its length against the
  // file size, the JSON, each dtype and shape, that every tensor's
  // data_offsets lie within the data section, that no two tensors overlap
  // and that each tensor's byte count equals numel * DTypeSize.
  // NotFound when the file does not exist; InvalidArgument naming the file
  // and the problem ("truncated", "header length ... past end of file",
  // "bad header", "tensor \"x\": data_offsets ... out of bounds", "unknown
  // dtype") otherwise.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path);

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  // The tensor called `name`, or nullptr if there is none.
  const TensorInfo* Find(std::string_view name) const;
  // All tensors, sorted by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // The "__metadata__" map (empty when absent).
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> by_name_;
  std::map<std::string, std::string> metadata_;
};

// A model's weights in a Hugging Face directory: either a single
// model.safetensors, or shards named by model.safetensors.index.json's
// "weight_map" (tensor name -> shard file). The index wins when both exist.
// Thread-safe after Open.
class SafetensorsModel {
 public:
  // NotFound when the directory has neither file or a shard is missing
  // (the message names it); InvalidArgument for a malformed index, a bad
  // shard, or an index entry whose tensor is not in its shard.
  static absl::StatusOr<std::unique_ptr<SafetensorsModel>> Open(
      const std::string& dir);

  // The tensor called `name` in whichever shard holds it, or nullptr.
  const TensorInfo* Find(std::string_view name) const;
  // Every tensor name, sorted.
  std::vector<std::string> Names() const;

 private:
  SafetensorsModel() = default;

  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*, std::less<>> by_name_;
};

// Converts an F32, F16, BF16 or F64 tensor to fp32 (F64 is rounded to
// nearest). InvalidArgument for other dtypes.
absl::StatusOr<std::vector<float>> ToFloat32(const TensorInfo& t);
// The same, written to out[0 .. t.numel()).
absl::Status ToFloat32Into(const TensorInfo& t, float* out);

// Tells the kernel the mapped pages that lie wholly inside t's bytes are not
// needed for now, so a loader that has copied or quantized a tensor does not
// keep the whole file resident while it reads the rest. t.data stays valid:
// the pages fault back in from the file if read again.
void ReleasePages(const TensorInfo& t);

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::string_view data;  // numel * DTypeSize(dtype) little-endian bytes
};

// The bytes of a safetensors file holding `tensors` and `metadata`: header
// JSON with sorted keys, padded with spaces to a multiple of 8 bytes as the
// Python library does, then the data in name order. Precondition: names are
// unique and not "__metadata__", and each data.size() equals numel * dtype
// size (WriteSafetensors checks this; here a violation gives a file that
// Open rejects).
std::string SerializeSafetensors(
    std::vector<TensorToWrite> tensors,
    const std::map<std::string, std::string>& metadata);

// Checks the preconditions above (InvalidArgument naming the tensor), then
// writes SerializeSafetensors' bytes to `path` atomically (WriteFileAtomic).
absl::Status WriteSafetensors(
    const std::string& path, std::vector<TensorToWrite> tensors,
    const std::map<std::string, std::string>& metadata);

}  // namespace lorad::model

#endif  // LORAD_MODEL_SAFETENSORS_H_
