// UTF-8, Unicode character classes and NFC for the tokenizer.
#include <algorithm>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "tokenizer_internal.h"
#include "utf8_append.h"

namespace lorad::model::tokenizer_internal {
namespace {

constexpr char32_t kReplacement = 0xFFFD;
// Ill-formed bytes travel through NFC as code points above the Unicode range
// so that they keep their position and come out unchanged.
constexpr char32_t kRawByteBase = 0x110000;

constexpr char32_t kHangulS = 0xAC00, kHangulL = 0x1100, kHangulV = 0x1161,
                   kHangulT = 0x11A7;
constexpr int kHangulLCount = 19, kHangulVCount = 21, kHangulTCount = 28;
constexpr int kHangulNCount = kHangulVCount * kHangulTCount;
constexpr int kHangulSCount = kHangulLCount * kHangulNCount;

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Decodes one code point. On failure, *length is the length of the maximal
// prefix of a well-formed sequence (at least 1), as Unicode recommends for
// U+FFFD substitution.
std::optional<char32_t> Decode(std::string_view text, size_t pos,
                               size_t* length) {
  const auto byte = [&](size_t i) -> int {
    return pos + i < text.size() ? static_cast<unsigned char>(text[pos + i])
                                 : -1;
  };
  const int b0 = byte(0);
  *length = 1;
  if (b0 < 0x80) return static_cast<char32_t>(b0);
  int need;
  char32_t cp;
  int lo = 0x80, hi = 0xBF;  // Allowed range of the second byte.
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return std::nullopt;
  }
  for (int i = 1; i <= need; ++i) {
    const int b = byte(i);
    const bool ok = b >= 0 && IsContinuation(static_cast<unsigned char>(b)) &&
                    (i != 1 || (b >= lo && b <= hi));
    if (!ok) {
      *length = i;
      return std::nullopt;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *length = need + 1;
  return cp;
}

template <typename Range>
const Range* FindRange(std::span<const Range> ranges, char32_t cp) {
  auto it =
      std::upper_bound(ranges.begin(), ranges.end(), cp,
                       [](char32_t c, const Range& r) { return c < r.first; });
  if (it == ranges.begin()) return nullptr;
  --it;
  return cp <= it->last ? &*it : nullptr;
}

uint8_t CombiningClass(char32_t cp) {
  if (cp < 0x300) return 0;
  const CombiningClassRange* r = FindRange(CombiningClassRanges(), cp);
  return r == nullptr ? 0 : r->ccc;
}

const CanonicalDecomposition* FindDecomposition(char32_t cp) {
  std::span<const CanonicalDecomposition> table = CanonicalDecompositions();
  auto it = std::lower_bound(
      table.begin(), table.end(), cp,
      [](const CanonicalDecomposition& d, char32_t c) { return d.cp < c; });
  return it != table.end() && it->cp == cp ? &*it : nullptr;
}

void Decompose(char32_t cp, std::vector<char32_t>* out) {
  if (cp >= kHangulS && cp < kHangulS + kHangulSCount) {
    const int index = cp - kHangulS;
    out->push_back(kHangulL + index / kHangulNCount);
    out->push_back(kHangulV + (index % kHangulNCount) / kHangulTCount);
    if (index % kHangulTCount != 0) {
      out->push_back(kHangulT + index % kHangulTCount);
    }
    return;
  }
  const CanonicalDecomposition* d = FindDecomposition(cp);
  if (d == nullptr) {
    out->push_back(cp);
    return;
  }
  Decompose(d->first, out);
  if (d->second != 0) Decompose(d->second, out);
}

std::optional<char32_t> Compose(char32_t a, char32_t b) {
  if (a >= kHangulL && a < kHangulL + kHangulLCount && b >= kHangulV &&
      b < kHangulV + kHangulVCount) {
    return kHangulS +
           ((a - kHangulL) * kHangulVCount + (b - kHangulV)) * kHangulTCount;
  }
  if (a >= kHangulS && a < kHangulS + kHangulSCount &&
      (a - kHangulS) % kHangulTCount == 0 && b > kHangulT &&
      b < kHangulT + kHangulTCount) {
    return a + (b - kHangulT);
  }
  static const auto* const kPairs = [] {
    auto* pairs = new absl::flat_hash_map<uint64_t, char32_t>();
    for (const CanonicalDecomposition& d : CanonicalDecompositions()) {
      if (d.composes) {
        (*pairs)[(static_cast<uint64_t>(d.first) << 32) | d.second] = d.cp;
      }
    }
    return pairs;
  }();
  auto it = kPairs->find((static_cast<uint64_t>(a) << 32) | b);
  if (it == kPairs->end()) return std::nullopt;
  return it->second;
}

}  // namespace

std::optional<char32_t> DecodeUtf8(std::string_view text, size_t pos,
                                   size_t* length) {
  std::optional<char32_t> cp = Decode(text, pos, length);
  if (!cp.has_value()) *length = 1;
  return cp;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp >= kRawByteBase) {
    out->push_back(static_cast<char>(cp - kRawByteBase));
  } else {
    AppendCodePoint(static_cast<uint32_t>(cp), out);
  }
}

bool IsLetter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return FindRange(LetterRanges(), cp) != nullptr;
}

bool IsNumber(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return FindRange(NumberRanges(), cp) != nullptr;
}

bool IsWhitespace(char32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

std::string NormalizeNfc(std::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x80;
      })) {
    return std::string(text);
  }
  std::vector<char32_t> chars;
  chars.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    size_t length;
    std::optional<char32_t> cp = DecodeUtf8(text, pos, &length);
    if (cp.has_value()) {
      Decompose(*cp, &chars);
    } else {
      chars.push_back(kRawByteBase + static_cast<unsigned char>(text[pos]));
    }
    pos += length;
  }
  // Canonical ordering: stable-sort each run of non-starters by class.
  for (size_t i = 0; i < chars.size();) {
    if (CombiningClass(chars[i]) == 0) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < chars.size() && CombiningClass(chars[end]) != 0) ++end;
    std::stable_sort(chars.begin() + i, chars.begin() + end,
                     [](char32_t a, char32_t b) {
                       return CombiningClass(a) < CombiningClass(b);
                     });
    i = end;
  }
  // Canonical composition.
  std::vector<char32_t> composed;
  composed.reserve(chars.size());
  std::optional<size_t> starter;
  int last_class = -1;
  for (char32_t c : chars) {
    const int cc = CombiningClass(c);
    if (starter.has_value() && (last_class < cc || last_class == 0)) {
      if (std::optional<char32_t> merged = Compose(composed[*starter], c)) {
        composed[*starter] = *merged;
        continue;
      }
    }
    if (cc == 0) {
      starter = composed.size();
      last_class = 0;
    } else {
      last_class = cc;
    }
    composed.push_back(c);
  }
  std::string out;
  out.reserve(text.size());
  for (char32_t c : composed) AppendUtf8(c, &out);
  return out;
}

std::string ToValidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    size_t length;
    if (Decode(bytes, pos, &length).has_value()) {
      out.append(bytes.substr(pos, length));
    } else {
      AppendUtf8(kReplacement, &out);
    }
    pos += length;
  }
  return out;
}

}  // namespace lorad::model::tokenizer_internal
