// safetensors reader/writer against files from the Python library, the
// Python library reading our files, sharded indexes, and malformed files.
#include "lorad/model/safetensors.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/half.h"

namespace lorad::worker {
namespace {

namespace fs = std::filesystem;

std::string Golden(const std::string& rel) {
  return std::string(LORAD_GOLDEN_DIR) + "/safetensors/" + rel;
}

std::string TempDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/safetensors_test_" + name;
  fs::remove_all(dir);
  EXPECT_TRUE(MakeDirs(dir).ok());
  return dir;
}

template <typename T>
std::vector<T> Values(const model::TensorInfo* t) {
  std::vector<T> v(t->nbytes / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), t->data, t->nbytes);
  return v;
}

template <typename T>
std::string_view View(const std::vector<T>& v) {
  return std::string_view(reinterpret_cast<const char*>(v.data()),
                          v.size() * sizeof(T));
}

// The ramp the golden script uses: -1.5 + 0.25 i.
std::vector<float> Ramp(int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = -1.5f + 0.25f * i;
  return v;
}

TEST(SafetensorsTest, ReadsFileWrittenByPython) {
  auto file = model::SafetensorsFile::Open(Golden("dtypes.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  const model::SafetensorsFile& f = **file;
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{
                              {"format", "pt"}, {"note", "golden"}}));
  EXPECT_EQ(f.tensors().size(), 12u);
  EXPECT_EQ(f.Find("nope"), nullptr);

  struct Want {
    std::string name;
    model::DType dtype;
    std::vector<int64_t> shape;
    int n;
  };
  for (const Want& w :
       std::vector<Want>{{"f64", model::DType::kF64, {2, 3}, 6},
                         {"f32", model::DType::kF32, {3, 4}, 12},
                         {"f16", model::DType::kF16, {5}, 5},
                         {"bf16", model::DType::kBF16, {7}, 7}}) {
    const model::TensorInfo* t = f.Find(w.name);
    ASSERT_NE(t, nullptr) << w.name;
    EXPECT_EQ(t->dtype, w.dtype);
    EXPECT_EQ(t->shape, w.shape);
    EXPECT_EQ(t->numel(), w.n);
    EXPECT_EQ(t->nbytes, w.n * model::DTypeSize(w.dtype));
    auto got = model::ToFloat32(*t);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, Ramp(w.n)) << w.name;
  }
  EXPECT_EQ(Values<int64_t>(f.Find("i64")),
            (std::vector<int64_t>{-(int64_t{1} << 40), 0, int64_t{1} << 40}));
  EXPECT_EQ(Values<int32_t>(f.Find("i32")),
            (std::vector<int32_t>{-7, 8, 9, -10}));
  EXPECT_EQ(Values<int16_t>(f.Find("i16")), (std::vector<int16_t>{-300, 300}));
  EXPECT_EQ(Values<int8_t>(f.Find("i8")), (std::vector<int8_t>{-128, 127, 0}));
  EXPECT_EQ(Values<uint8_t>(f.Find("u8")), (std::vector<uint8_t>{0, 1, 255}));
  EXPECT_EQ(Values<uint8_t>(f.Find("bool")), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(f.Find("bool")->dtype, model::DType::kBool);

  const model::TensorInfo* scalar = f.Find("scalar");
  ASSERT_NE(scalar, nullptr);
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->numel(), 1);
  EXPECT_EQ(Values<float>(scalar), std::vector<float>{3.5f});
  const model::TensorInfo* empty = f.Find("empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->numel(), 0);
  EXPECT_EQ(empty->nbytes, 0);

  auto ints = model::ToFloat32(*f.Find("i32"));
  EXPECT_EQ(ints.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SafetensorsTest, DTypeNamesRoundTrip) {
  for (model::DType d :
       {model::DType::kF64, model::DType::kF32, model::DType::kF16,
        model::DType::kBF16, model::DType::kI64, model::DType::kI32,
        model::DType::kI16, model::DType::kI8, model::DType::kU8,
        model::DType::kBool}) {
    auto parsed = model::ParseDType(model::DTypeName(d));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, d);
  }
  EXPECT_EQ(model::DTypeSize(model::DType::kBF16), 2);
  EXPECT_EQ(model::ParseDType("F8_E4M3").status().code(),
            absl::StatusCode::kInvalidArgument);
}

std::vector<model::TensorToWrite> SampleTensors(
    const std::vector<float>& f32, const std::vector<uint16_t>& bf16,
    const std::vector<int64_t>& i64) {
  return {{"z.weight", model::DType::kF32, {2, 3}, View(f32)},
          {"a.bias", model::DType::kBF16, {4}, View(bf16)},
          {"m.index", model::DType::kI64, {2}, View(i64)},
          {"e.empty", model::DType::kF32, {0}, std::string_view()}};
}

TEST(SafetensorsTest, WriterOutputRoundTripsAndIsAligned) {
  std::vector<float> f32 = Ramp(6);
  std::vector<uint16_t> bf16;
  for (float v : Ramp(4)) bf16.push_back(model::FloatToBf16(v));
  std::vector<int64_t> i64 = {-5, 1234567890123};
  std::string path = TempDir("writer") + "/out.safetensors";
  ASSERT_TRUE(model::WriteSafetensors(path, SampleTensors(f32, bf16, i64),
                                      {{"format", "pt"}})
                  .ok());

  auto bytes = ReadFile(path);
  ASSERT_TRUE(bytes.ok());
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes->data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  std::string header = bytes->substr(8, header_len);
  EXPECT_EQ(header.find("{\"__metadata__\":{\"format\":\"pt\"},\"a.bias\":"),
            0u)
      << header;

  auto file = model::SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  // Data follows name order.
  EXPECT_LT((*file)->Find("a.bias")->data, (*file)->Find("m.index")->data);
  EXPECT_LT((*file)->Find("m.index")->data, (*file)->Find("z.weight")->data);
  EXPECT_EQ(*model::ToFloat32(*(*file)->Find("z.weight")), f32);
  EXPECT_EQ(*model::ToFloat32(*(*file)->Find("a.bias")), Ramp(4));
  EXPECT_EQ(Values<int64_t>((*file)->Find("m.index")), i64);
  EXPECT_EQ((*file)->Find("e.empty")->numel(), 0);
}

TEST(SafetensorsTest, PythonLoadsWriterOutput) {
  if (!fs::exists(LORAD_PYTHON)) GTEST_SKIP() << "no " << LORAD_PYTHON;
  std::vector<float> f32 = Ramp(6);
  std::vector<uint16_t> bf16;
  for (float v : Ramp(4)) bf16.push_back(model::FloatToBf16(v));
  std::vector<int64_t> i64 = {-5, 1234567890123};
  std::string dir = TempDir("python");
  std::string path = dir + "/out.safetensors";
  ASSERT_TRUE(model::WriteSafetensors(path, SampleTensors(f32, bf16, i64),
                                      {{"format", "pt"}, {"k", "v"}})
                  .ok());
  const std::string script = R"(
import sys
from safetensors import safe_open
with safe_open(sys.argv[1], framework="pt") as f:
    meta = f.metadata()
    parts = [repr(sorted(meta.items()))]
    for k in sorted(f.keys()):
        t = f.get_tensor(k)
        parts.append("%s %s %s %s" % (k, str(t.dtype), list(t.shape),
                                      t.flatten().tolist()))
print("|".join(parts))
)";
  std::string script_path = dir + "/check.py";
  ASSERT_TRUE(WriteFileAtomic(script_path, script).ok());
  std::string cmd =
      std::string(LORAD_PYTHON) + " " + script_path + " " + path + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  ASSERT_EQ(pclose(pipe), 0) << out;
  EXPECT_NE(out.find("[('format', 'pt'), ('k', 'v')]|"
                     "a.bias torch.bfloat16 [4] [-1.5, -1.25, -1.0, -0.75]|"
                     "e.empty torch.float32 [0] []|"
                     "m.index torch.int64 [2] [-5, 1234567890123]|"
                     "z.weight torch.float32 [2, 3] "
                     "[-1.5, -1.25, -1.0, -0.75, -0.5, -0.25]"),
            std::string::npos)
      << out;
}

TEST(SafetensorsTest, WriterRejectsBadTensors) {
  std::vector<float> three(3);
  std::string dir = TempDir("reject");
  absl::Status s = model::WriteSafetensors(
      dir + "/x.safetensors", {{"w", model::DType::kF32, {2, 2}, View(three)}},
      {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("\"w\""), std::string_view::npos) << s;
  s = model::WriteSafetensors(dir + "/x.safetensors",
                              {{"w", model::DType::kF32, {3}, View(three)},
                               {"w", model::DType::kF32, {3}, View(three)}},
                              {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir + "/x.safetensors"));
}

// A loader releases a tensor's pages after reading it; the data must read
// back the same afterwards (from the file), for every dtype
// model::ToFloat32Into converts.
TEST(SafetensorsTest, ReleasedPagesReadBackFromTheFile) {
  const std::string dir = TempDir("release");
  const int64_t n = 3 * 4096 + 17;  // spans whole pages and partial ones
  std::vector<float> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = std::sin(0.01 * i) * 3.0f;
  std::vector<uint16_t> halves(n);
  for (int64_t i = 0; i < n; ++i) halves[i] = model::FloatToBf16(values[i]);
  const std::string path = dir + "/w.safetensors";
  ASSERT_TRUE(
      model::WriteSafetensors(
          path,
          {{"a",
            model::DType::kF32,
            {n},
            std::string_view(reinterpret_cast<const char*>(values.data()),
                             n * sizeof(float))},
           {"b",
            model::DType::kBF16,
            {n},
            std::string_view(reinterpret_cast<const char*>(halves.data()),
                             n * sizeof(uint16_t))}},
          {})
          .ok());
  auto file = model::SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  for (const char* name : {"a", "b"}) {
    const model::TensorInfo* t = (*file)->Find(name);
    ASSERT_NE(t, nullptr);
    std::vector<float> before(n), after(n);
    ASSERT_TRUE(model::ToFloat32Into(*t, before.data()).ok());
    model::ReleasePages(*t);
    ASSERT_TRUE(model::ToFloat32Into(*t, after.data()).ok());
    EXPECT_EQ(before, after) << name;
    if (std::string(name) == "a") EXPECT_EQ(after, values);
  }
}

TEST(SafetensorsTest, OpensShardedModel) {
  auto model = model::SafetensorsModel::Open(Golden("sharded"));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(
      (*model)->Names(),
      (std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight",
                                "model.layers.0.mlp.up_proj.weight"}));
  const model::TensorInfo* head = (*model)->Find("lm_head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->dtype, model::DType::kF16);
  EXPECT_EQ(*model::ToFloat32(*head), Ramp(4));
  EXPECT_EQ(*model::ToFloat32(*(*model)->Find("model.embed_tokens.weight")),
            Ramp(8));
  EXPECT_EQ((*model)->Find("missing"), nullptr);
}

TEST(SafetensorsTest, OpensSingleFileModel) {
  std::string dir = TempDir("single");
  fs::copy_file(Golden("dtypes.safetensors"), dir + "/model.safetensors");
  auto model = model::SafetensorsModel::Open(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->Names().size(), 12u);
  EXPECT_NE((*model)->Find("bf16"), nullptr);
}

TEST(SafetensorsTest, ModelErrorsNameWhatIsMissing) {
  std::string dir = TempDir("missing");
  auto none = model::SafetensorsModel::Open(dir);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("model.safetensors"),
            std::string_view::npos);

  fs::copy_file(Golden("sharded/model.safetensors.index.json"),
                dir + "/model.safetensors.index.json");
  fs::copy_file(Golden("sharded/model-00001-of-00002.safetensors"),
                dir + "/model-00001-of-00002.safetensors");
  auto shard = model::SafetensorsModel::Open(dir);
  EXPECT_EQ(shard.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(shard.status().message().find("model-00002-of-00002.safetensors"),
            std::string_view::npos)
      << shard.status();

  // A shard that exists but lacks a tensor the index puts there.
  fs::copy_file(Golden("sharded/model-00001-of-00002.safetensors"),
                dir + "/model-00002-of-00002.safetensors");
  auto wrong = model::SafetensorsModel::Open(dir);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("lm_head.weight"),
            std::string_view::npos)
      << wrong.status();
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  auto f = model::SafetensorsFile::Open("/nonexistent/x.safetensors");
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
}

// A file with `header` as its JSON and `data_bytes` zero bytes of data.
std::string MakeFile(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  uint64_t len = header.size();
  std::memcpy(out.data(), &len, 8);
  return out + header + std::string(data_bytes, '\0');
}

struct BadCase {
  std::string name;
  std::string bytes;
  std::string message;  // expected in the error
};

class SafetensorsBadFileTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(SafetensorsBadFileTest, IsInvalidArgumentNamingTheProblem) {
  const BadCase& c = GetParam();
  std::string path = TempDir("bad_" + c.name) + "/" + c.name + ".safetensors";
  ASSERT_TRUE(WriteFileAtomic(path, c.bytes).ok());
  auto f = model::SafetensorsFile::Open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument)
      << f.status();
  EXPECT_NE(f.status().message().find(c.message), std::string_view::npos)
      << f.status();
  EXPECT_NE(f.status().message().find(path), std::string_view::npos)
      << f.status();
}

const char kOneTensor[] =
    R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

std::string Truncate(std::string s, size_t drop) {
  s.resize(s.size() - drop);
  return s;
}

std::string HugeHeaderLength() {
  std::string s = MakeFile(kOneTensor, 8);
  uint64_t len = uint64_t{1} << 62;
  std::memcpy(s.data(), &len, 8);
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SafetensorsBadFileTest,
    ::testing::Values(
        BadCase{"empty", "", "truncated"},
        BadCase{"short", std::string("\x10\0\0", 3), "truncated"},
        BadCase{"header_past_end", Truncate(MakeFile(kOneTensor, 0), 5),
                "past end of file"},
        BadCase{"huge_header_len", HugeHeaderLength(), "past end of file"},
        BadCase{"data_truncated", MakeFile(kOneTensor, 4), "out of bounds"},
        BadCase{"offsets_out_of_range",
                MakeFile(R"({"w":{"dtype":"F32","shape":[2],)"
                         R"("data_offsets":[8,16]}})",
                         8),
                "out of bounds"},
        BadCase{"offsets_reversed",
                MakeFile(R"({"w":{"dtype":"F32","shape":[0],)"
                         R"("data_offsets":[8,0]}})",
                         8),
                "out of bounds"},
        BadCase{"unknown_dtype",
                MakeFile(R"({"w":{"dtype":"F12","shape":[2],)"
                         R"("data_offsets":[0,8]}})",
                         8),
                "unknown dtype \"F12\""},
        BadCase{"bad_json", MakeFile(R"({"w":{"dtype":)", 8), "bad header"},
        BadCase{"not_object", MakeFile("[1,2]", 0), "bad header"},
        BadCase{"size_mismatch",
                MakeFile(R"({"w":{"dtype":"F32","shape":[3],)"
                         R"("data_offsets":[0,8]}})",
                         8),
                "shape and dtype need 12"},
        BadCase{"negative_dim",
                MakeFile(R"({"w":{"dtype":"F32","shape":[-2],)"
                         R"("data_offsets":[0,8]}})",
                         8),
                "shape"},
        BadCase{"overlap",
                MakeFile(R"({"a":{"dtype":"F32","shape":[2],)"
                         R"("data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[1],)"
                         R"("data_offsets":[4,8]}})",
                         8),
                "overlaps"},
        BadCase{"bad_metadata", MakeFile(R"({"__metadata__":{"a":1}})", 0),
                "__metadata__"}),
    [](const ::testing::TestParamInfo<BadCase>& info) {
      return info.param.name;
    });

TEST(HalfTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(model::FloatToBf16(1.0f), 0x3f80);
  // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to even (1.0).
  EXPECT_EQ(model::FloatToBf16(1.0f + 0x1p-8f), 0x3f80);
  // 1 + 3 * 2^-8 is halfway, rounding up to the even 0x3f82.
  EXPECT_EQ(model::FloatToBf16(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(model::FloatToBf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  EXPECT_EQ(model::FloatToBf16(-std::numeric_limits<float>::infinity()),
            0xff80);
  EXPECT_EQ(model::FloatToBf16(std::numeric_limits<float>::max()), 0x7f80);
  const uint16_t nan = model::FloatToBf16(std::bit_cast<float>(0x7f800001u));
  EXPECT_TRUE(std::isnan(model::Bf16ToFloat(nan)));
  EXPECT_TRUE(
      std::signbit(model::Bf16ToFloat(model::FloatToBf16(-std::nanf("")))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = model::Bf16ToFloat(static_cast<uint16_t>(h));
    if (!std::isnan(f)) ASSERT_EQ(model::FloatToBf16(f), h);
  }
}

TEST(HalfTest, HalfConversions) {
  EXPECT_EQ(model::FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(model::FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(model::FloatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(model::FloatToHalf(65520.0f), 0x7c00);  // rounds to infinity
  EXPECT_EQ(model::FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(model::FloatToHalf(0x1p-24f), 0x0001);         // smallest subnormal
  EXPECT_EQ(model::FloatToHalf(0x1p-25f), 0x0000);         // tie to even: zero
  EXPECT_EQ(model::FloatToHalf(3 * 0x1p-25f), 0x0002);     // tie to even: 2
  EXPECT_EQ(model::FloatToHalf(1.0f + 0x1p-11f), 0x3c00);  // tie to even
  EXPECT_EQ(model::FloatToHalf(1.0f + 3 * 0x1p-11f), 0x3c02);
  EXPECT_EQ(model::FloatToHalf(0x1p-14f - 0x1p-30f),
            0x0400);  // rounds up to normal
  EXPECT_TRUE(
      std::isnan(model::HalfToFloat(model::FloatToHalf(std::nanf("")))));
  EXPECT_EQ(model::HalfToFloat(0x0001), 0x1p-24f);
  EXPECT_EQ(model::HalfToFloat(0xfc00),
            -std::numeric_limits<float>::infinity());
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = model::HalfToFloat(static_cast<uint16_t>(h));
    if (!std::isnan(f)) ASSERT_EQ(model::FloatToHalf(f), h) << h;
  }
}

}  // namespace
}  // namespace lorad::worker
