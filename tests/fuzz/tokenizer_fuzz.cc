// Fuzzes the tokenizer: tokenizer.json parsing (outside input: any model
// directory; a file that loads is then used on a varied text, with special
// tokens, offsets and streaming decode) and encode (with offsets) / decode
// of arbitrary bytes (every prompt and dataset). The first byte picks which.
// Offsets must be the ids Encode gives, each a span of the text.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lorad/model/tokenizer.h"

namespace {

void CheckOffsets(const lorad::model::Tokenizer& tok, std::string_view text,
                  const std::vector<int32_t>& ids) {
  std::vector<std::pair<size_t, size_t>> offsets;
  if (tok.EncodeWithOffsets(text, &offsets) != ids ||
      offsets.size() != ids.size()) {
    __builtin_trap();
  }
  for (const auto& [begin, end] : offsets) {
    if (begin > end || end > text.size()) __builtin_trap();
  }
}

const lorad::model::Tokenizer* Loaded(int which) {
  static const char* kFiles[] = {
      LORAD_GOLDEN_DIR "/tokenizer/gpt2.tokenizer.json",
      LORAD_GOLDEN_DIR "/tokenizer/llama3.tokenizer.json",
      LORAD_GOLDEN_DIR "/tokenizer/qwen2.tokenizer.json",
  };
  static std::unique_ptr<lorad::model::Tokenizer> cache[3];
  if (!cache[which]) {
    auto t = lorad::model::Tokenizer::FromFile(kFiles[which]);
    if (!t.ok()) __builtin_trap();  // the golden files must load
    cache[which] = std::move(*t);
  }
  return cache[which].get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int mode = data[0] % 4;
  if (mode == 3) {
    auto parsed = lorad::model::Tokenizer::FromJson(rest, "tokenizer.json");
    if (!parsed.ok()) return 0;
    const lorad::model::Tokenizer& tok = **parsed;
    const std::string text =
        "Hello  w\xC3\xB6rld\t<s>\xE6\x97\xA5\xF0\x9F\x98\x80 <tool>\n";
    std::vector<int32_t> ids = tok.EncodeWithSpecialTokens(text);
    CheckOffsets(tok, text, tok.Encode(text));
    (void)tok.Decode(ids, /*skip_special_tokens=*/true);
    lorad::model::StreamDecoder stream(tok, /*skip_special_tokens=*/false);
    for (int32_t id : ids) (void)stream.Add(id);
    (void)stream.Finish();
    return 0;
  }
  const lorad::model::Tokenizer* tok = Loaded(mode);
  std::vector<int32_t> ids = tok->Encode(rest);
  CheckOffsets(*tok, rest, ids);
  std::string back = tok->Decode(ids, /*skip_special_tokens=*/false);
  (void)back;
  return 0;
}
