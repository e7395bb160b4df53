#include "lorad/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/half.h"
#include "nlohmann/json.hpp"

namespace lorad::model {
namespace {

using nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";
// The Python library refuses headers above 100 MB; so do we, which also
// bounds what a corrupt length can make us parse.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
// A header is {"name": {"dtype", "shape": [...], "data_offsets": [...]}}
// plus "__metadata__" (strings): 3 levels deep.
constexpr int kMaxHeaderDepth = 8;
constexpr int64_t kMaxHeaderValues = int64_t{8} << 20;

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  int64_t size;
};
constexpr std::array<DTypeEntry, 10> kDTypes = {{
    {DType::kF64, "F64", 8},
    {DType::kF32, "F32", 4},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kI64, "I64", 8},
    {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},
    {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
}};

const DTypeEntry& Entry(DType d) {
  for (const auto& e : kDTypes) {
    if (e.dtype == d) return e;
  }
  return kDTypes[1];  // unreachable for valid enum values
}

// numel * elem_size, or -1 if a dimension is negative or it overflows.
int64_t CheckedBytes(const std::vector<int64_t>& shape, int64_t elem_size) {
  int64_t n = elem_size;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

uint64_t ReadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

absl::Status Bad(const std::string& path, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", std::string(what)));
}

}  // namespace

absl::StatusOr<DType> ParseDType(std::string_view s) {
  for (const auto& e : kDTypes) {
    if (e.name == s) return e.dtype;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype \"", std::string(s), "\""));
}

std::string_view DTypeName(DType d) { return Entry(d).name; }

int64_t DTypeSize(DType d) { return Entry(d).size; }

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) munmap(map_, map_size_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot open: ", std::strerror(err)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Bad(path, "not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    return Bad(path, absl::StrCat("truncated: ", file_size,
                                  " bytes, shorter than the 8-byte header "
                                  "length"));
  }
  void* map = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (map == MAP_FAILED) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": mmap failed: ", std::strerror(map_err)));
  }
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  file->map_ = map;
  file->map_size_ = file_size;
  const auto* base = static_cast<const uint8_t*>(map);

  const uint64_t header_len = ReadLe64(base);
  if (header_len > file_size - 8) {
    return Bad(path,
               absl::StrCat("truncated: header length ", header_len,
                            " runs past end of file (", file_size, " bytes)"));
  }
  if (header_len > kMaxHeaderBytes) {
    return Bad(path, absl::StrCat("bad header: length ", header_len,
                                  " exceeds ", kMaxHeaderBytes));
  }
  const std::string_view header(reinterpret_cast<const char*>(base + 8),
                                header_len);
  absl::StatusOr<json> parsed = ParseBoundedJson(
      header, JsonLimits{kMaxHeaderBytes, kMaxHeaderDepth, kMaxHeaderValues});
  if (!parsed.ok()) {
    return Bad(path, absl::StrCat("bad header: ", parsed.status().message()));
  }
  json& j = *parsed;
  if (!j.is_object()) return Bad(path, "bad header: not a JSON object");
  const uint8_t* data = base + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;

  struct Span {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Span> spans;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == kMetadataKey) {
      if (!v.is_object())
        return Bad(path, "bad header: __metadata__ not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          return Bad(path, absl::StrCat("bad header: __metadata__ value \"",
                                        m.key(), "\" is not a string"));
        }
        file->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = absl::StrCat("tensor \"", name, "\": ");
    if (!v.is_object()) return Bad(path, where + "entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) {
      return Bad(path, where + "missing dtype");
    }
    auto dtype = ParseDType(dt->get<std::string>());
    if (!dtype.ok())
      return Bad(path, where + std::string(dtype.status().message()));
    if (sh == v.end() || !sh->is_array()) {
      return Bad(path, where + "missing shape");
    }
    TensorInfo t;
    t.name = name;
    t.dtype = *dtype;
    for (const json& d : *sh) {
      if (!d.is_number_unsigned() ||
          d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return Bad(path, where +
                             "shape entries must be non-negative integers "
                             "below 2^63");
      }
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    if (off == v.end() || !off->is_array() || off->size() != 2 ||
        !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned()) {
      return Bad(path,
                 where + "data_offsets must be two non-negative integers");
    }
    const uint64_t begin = (*off)[0].get<uint64_t>();
    const uint64_t end = (*off)[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return Bad(path, absl::StrCat(where, "data_offsets [", begin, ", ", end,
                                    "] out of bounds (data section is ",
                                    data_size, " bytes)"));
    }
    const int64_t want = CheckedBytes(t.shape, DTypeSize(t.dtype));
    if (want < 0 || static_cast<uint64_t>(want) != end - begin) {
      return Bad(path, absl::StrCat(where, "holds ", end - begin,
                                    " bytes but shape and dtype need ",
                                    want < 0 ? std::string("too many")
                                             : absl::StrCat(want)));
    }
    t.data = data + begin;
    t.nbytes = static_cast<int64_t>(end - begin);
    spans.push_back({begin, end, file->tensors_.size()});
    file->tensors_.push_back(std::move(t));
  }

  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].begin < spans[i - 1].end) {
      return Bad(path,
                 absl::StrCat("tensor \"", file->tensors_[spans[i].index].name,
                              "\" overlaps tensor \"",
                              file->tensors_[spans[i - 1].index].name, "\""));
    }
  }
  // nlohmann's default object is ordered by key, so tensors_ is sorted.
  for (size_t i = 0; i < file->tensors_.size(); ++i) {
    file->by_name_[file->tensors_[i].name] = i;
  }
  return file;
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<std::unique_ptr<SafetensorsModel>> SafetensorsModel::Open(
    const std::string& dir) {
  namespace fs = std::filesystem;
  auto model = std::unique_ptr<SafetensorsModel>(new SafetensorsModel());
  const std::string index_path = dir + "/model.safetensors.index.json";
  const std::string single_path = dir + "/model.safetensors";
  std::error_code ec;
  if (!fs::exists(index_path, ec)) {
    if (!fs::exists(single_path, ec)) {
      return absl::NotFoundError(
          absl::StrCat(dir,
                       ": neither model.safetensors nor "
                       "model.safetensors.index.json exists"));
    }
    LORAD_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(single_path));
    for (const TensorInfo& t : file->tensors()) model->by_name_[t.name] = &t;
    model->files_.push_back(std::move(file));
    return model;
  }

  LORAD_ASSIGN_OR_RETURN(std::string text, ReadFile(index_path));
  absl::StatusOr<json> parsed = ParseBoundedJson(
      text, JsonLimits{kMaxHeaderBytes, kMaxHeaderDepth, kMaxHeaderValues});
  if (!parsed.ok()) {
    return Bad(index_path, std::string(parsed.status().message()));
  }
  json& j = *parsed;
  if (!j.is_object()) return Bad(index_path, "not a JSON object");
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) {
    return Bad(index_path, "missing \"weight_map\" object");
  }
  std::map<std::string, SafetensorsFile*> shards;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string()) {
      return Bad(index_path, absl::StrCat("weight_map[\"", it.key(),
                                          "\"] is not a string"));
    }
    const std::string shard = it.value().get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." ||
        shard == "..") {
      return Bad(index_path,
                 absl::StrCat("weight_map[\"", it.key(),
                              "\"]: bad shard name \"", shard, "\""));
    }
    auto found = shards.find(shard);
    if (found == shards.end()) {
      auto opened = SafetensorsFile::Open(dir + "/" + shard);
      if (!opened.ok()) {
        if (absl::IsNotFound(opened.status())) {
          return absl::NotFoundError(absl::StrCat(index_path, ": shard \"",
                                                  shard, "\" (holding \"",
                                                  it.key(), "\") is missing"));
        }
        return opened.status();
      }
      found = shards.emplace(shard, opened->get()).first;
      model->files_.push_back(std::move(*opened));
    }
    const TensorInfo* t = found->second->Find(it.key());
    if (t == nullptr) {
      return Bad(index_path,
                 absl::StrCat("tensor \"", it.key(),
                              "\" is not in its shard \"", shard, "\""));
    }
    model->by_name_[it.key()] = t;
  }
  return model;
}

const TensorInfo* SafetensorsModel::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> SafetensorsModel::Names() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, t] : by_name_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

void ReleasePages(const TensorInfo& t) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data);
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = (begin + t.nbytes) / page * page;
  if (t.data == nullptr || last <= first) return;
  // Advice only: a failure changes nothing the caller can see.
  madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

absl::Status ToFloat32Into(const TensorInfo& t, float* out) {
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::kF32:
      if (n > 0) std::memcpy(out, t.data, n * sizeof(float));
      return absl::OkStatus();
    case DType::kF64:
      for (int64_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, t.data + 8 * i, 8);
        out[i] = static_cast<float>(v);
      }
      return absl::OkStatus();
    case DType::kF16:
    case DType::kBF16: {
      const bool bf16 = t.dtype == DType::kBF16;
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = bf16 ? Bf16ToFloat(h) : HalfToFloat(h);
      }
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", t.name, "\": cannot convert ",
                       std::string(DTypeName(t.dtype)), " to fp32"));
  }
}

absl::StatusOr<std::vector<float>> ToFloat32(const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  LORAD_RETURN_IF_ERROR(ToFloat32Into(t, out.data()));
  return out;
}

std::string SerializeSafetensors(
    std::vector<TensorToWrite> tensors,
    const std::map<std::string, std::string>& metadata) {
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorToWrite& a, const TensorToWrite& b) {
              return a.name < b.name;
            });
  json header = json::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    json shape = json::array();
    for (int64_t d : t.shape) shape.push_back(d);
    header[t.name] = {{"dtype", std::string(DTypeName(t.dtype))},
                      {"shape", std::move(shape)},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump(-1, ' ', /*ensure_ascii=*/false,
                                 json::error_handler_t::replace);
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + text.size() + offset);
  uint64_t len = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(len >> (8 * i)));
  out += text;
  for (const TensorToWrite& t : tensors) out.append(t.data);
  return out;
}

absl::Status WriteSafetensors(
    const std::string& path, std::vector<TensorToWrite> tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<std::string_view> names;
  for (const TensorToWrite& t : tensors) {
    if (t.name == kMetadataKey) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": a tensor may not be called __metadata__"));
    }
    const int64_t want = CheckedBytes(t.shape, DTypeSize(t.dtype));
    if (want < 0 || static_cast<uint64_t>(want) != t.data.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor \"", t.name, "\" has ", t.data.size(),
                       " bytes but its shape and dtype need ", want));
    }
    names.push_back(t.name);
  }
  std::sort(names.begin(), names.end());
  auto dup = std::adjacent_find(names.begin(), names.end());
  if (dup != names.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": tensor \"", std::string(*dup), "\" appears twice"));
  }
  return WriteFileAtomic(path,
                         SerializeSafetensors(std::move(tensors), metadata));
}

}  // namespace lorad::model
