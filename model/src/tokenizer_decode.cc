// Decode: ids to tokens, then the decoder chain (ByteLevel, Replace,
// ByteFallback, Fuse, Strip, Metaspace) as HF applies it, token list to token
// list; and StreamDecoder on top of it.
#include <algorithm>

#include "absl/strings/str_join.h"
#include "tokenizer_internal.h"

namespace lorad::model {
namespace {

using tokenizer_internal::DecoderStep;
using tokenizer_internal::DecodeUtf8;
using tokenizer_internal::PrependScheme;
using tokenizer_internal::ReplaceAll;

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// ByteLevel: every token whose chars all stand for bytes becomes those
// bytes, any other is taken as it is; the whole is one lossy UTF-8 string.
std::vector<std::string> ByteLevel(const std::vector<std::string>& tokens) {
  std::string bytes;
  for (const std::string& token : tokens) {
    std::string token_bytes;
    bool all_bytes = true;
    for (size_t pos = 0; pos < token.size();) {
      size_t length;
      std::optional<char32_t> cp = DecodeUtf8(token, pos, &length);
      std::optional<uint8_t> byte = cp.has_value()
                                        ? tokenizer_internal::UnicodeToByte(*cp)
                                        : std::nullopt;
      if (!byte.has_value()) {
        all_bytes = false;
        break;
      }
      token_bytes.push_back(static_cast<char>(*byte));
      pos += length;
    }
    bytes += all_bytes ? token_bytes : token;
  }
  return {tokenizer_internal::ToValidUtf8(bytes)};
}

// The byte a "<0xNN>" token stands for.
std::optional<uint8_t> ByteToken(std::string_view token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') {
    return std::nullopt;
  }
  int value = 0;
  for (char c : token.substr(3, 2)) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    value = value * 16 + digit;
  }
  return static_cast<uint8_t>(value);
}

bool IsValidUtf8(std::string_view bytes) {
  for (size_t pos = 0; pos < bytes.size();) {
    size_t length;
    if (!DecodeUtf8(bytes, pos, &length).has_value()) return false;
    pos += length;
  }
  return true;
}

// ByteFallback: each run of "<0xNN>" tokens becomes its text, or one U+FFFD
// per byte when the run is not valid UTF-8.
std::vector<std::string> ByteFallback(std::vector<std::string> tokens) {
  std::vector<std::string> out;
  std::string run;
  size_t run_tokens = 0;
  const auto flush = [&] {
    if (run_tokens == 0) return;
    if (IsValidUtf8(run)) {
      out.push_back(run);
    } else {
      for (size_t i = 0; i < run_tokens; ++i) {
        out.emplace_back(kReplacementChar);
      }
    }
    run.clear();
    run_tokens = 0;
  };
  for (std::string& token : tokens) {
    if (std::optional<uint8_t> byte = ByteToken(token)) {
      run.push_back(static_cast<char>(*byte));
      ++run_tokens;
      continue;
    }
    flush();
    out.push_back(std::move(token));
  }
  flush();
  return out;
}

// Strip: up to `start` leading and `stop` trailing `content` chars of each
// token.
std::string Strip(const std::string& token, const DecoderStep& step) {
  std::vector<size_t> starts;  // byte offset of each char
  for (size_t pos = 0; pos < token.size();) {
    starts.push_back(pos);
    size_t length;
    DecodeUtf8(token, pos, &length);
    pos += length;
  }
  const size_t count = starts.size();
  const auto char_at = [&](size_t i) {
    const size_t end = i + 1 < count ? starts[i + 1] : token.size();
    return std::string_view(token).substr(starts[i], end - starts[i]);
  };
  size_t first = 0;
  while (first < count && first < static_cast<size_t>(step.start) &&
         char_at(first) == step.pattern) {
    ++first;
  }
  size_t last = count;
  while (last > 0 && count - last < static_cast<size_t>(step.stop) &&
         char_at(last - 1) == step.pattern) {
    --last;
  }
  if (first >= last) return "";
  const size_t end = last < count ? starts[last] : token.size();
  return token.substr(starts[first], end - starts[first]);
}

std::vector<std::string> Apply(const DecoderStep& step,
                               std::vector<std::string> tokens) {
  switch (step.kind) {
    case DecoderStep::Kind::kByteLevel:
      return ByteLevel(tokens);
    case DecoderStep::Kind::kByteFallback:
      return ByteFallback(std::move(tokens));
    case DecoderStep::Kind::kFuse:
      return {absl::StrJoin(tokens, "")};
    case DecoderStep::Kind::kReplace:
      for (std::string& token : tokens) {
        token = ReplaceAll(token, step.pattern, step.content);
      }
      return tokens;
    case DecoderStep::Kind::kStrip:
      for (std::string& token : tokens) token = Strip(token, step);
      return tokens;
    case DecoderStep::Kind::kMetaspace:
      // The first token loses every replacement char (the prefix the
      // pre-tokenizer added); the others turn them into spaces.
      for (size_t i = 0; i < tokens.size(); ++i) {
        const bool drop =
            i == 0 && step.prepend_scheme != PrependScheme::kNever;
        tokens[i] = ReplaceAll(tokens[i], step.pattern, drop ? "" : " ");
      }
      return tokens;
  }
  return tokens;
}

bool EndsWithReplacementChar(std::string_view text) {
  return text.ends_with(kReplacementChar);
}

// The length of the longest common prefix of a and b that ends on a UTF-8
// character boundary of both.
size_t CommonPrefix(std::string_view a, std::string_view b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  while (n > 0 && n < a.size() &&
         (static_cast<unsigned char>(a[n]) & 0xC0) == 0x80) {
    --n;
  }
  return n;
}

}  // namespace

std::string Tokenizer::Impl::Decode(std::span<const int32_t> ids,
                                    bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto added = model.added_by_id.find(id);
    if (added != model.added_by_id.end()) {
      const auto& entry = model.added[added->second];
      if (skip_special_tokens && entry.special) continue;
      // HF hands the decoder a normalized token's normalized form (e.g.
      // "\u2581<tool>" under a Prepend normalizer).
      tokens.push_back(entry.normalized ? entry.match_text : entry.content);
      continue;
    }
    auto it = model.id_to_token.find(id);
    if (it == model.id_to_token.end()) continue;
    // HF skips by content: a vocabulary token spelled like a special one.
    if (skip_special_tokens) {
      auto same = model.added_by_content.find(it->second);
      if (same != model.added_by_content.end() &&
          model.added[same->second].special) {
        continue;
      }
    }
    tokens.push_back(it->second);
  }
  // Without a decoder HF joins the tokens with spaces.
  if (!model.decoder.has_value()) return absl::StrJoin(tokens, " ");
  for (const DecoderStep& step : *model.decoder) {
    tokens = Apply(step, std::move(tokens));
  }
  return absl::StrJoin(tokens, "");
}

std::optional<std::string> Tokenizer::TokenBytes(int32_t id, bool first) const {
  const tokenizer_internal::TokenizerModel& model = impl_->model;
  if (model.added_by_id.contains(id)) return std::nullopt;
  auto it = model.id_to_token.find(id);
  if (it == model.id_to_token.end()) return std::nullopt;
  auto same = model.added_by_content.find(it->second);
  if (same != model.added_by_content.end() &&
      model.added[same->second].special) {
    return std::nullopt;
  }
  std::string token = it->second;
  if (!model.decoder.has_value()) return first ? token : " " + token;
  // After ByteLevel or Fuse the tokens are one string: a later Strip or
  // Metaspace sees the whole text, whose start is the first token's.
  bool fused = false;
  for (const DecoderStep& step : *model.decoder) {
    switch (step.kind) {
      case DecoderStep::Kind::kByteLevel: {
        std::string bytes;
        bool all_bytes = true;
        for (size_t pos = 0; pos < token.size() && all_bytes;) {
          size_t length;
          std::optional<char32_t> cp = DecodeUtf8(token, pos, &length);
          std::optional<uint8_t> byte =
              cp.has_value() ? tokenizer_internal::UnicodeToByte(*cp)
                             : std::nullopt;
          all_bytes = byte.has_value();
          if (all_bytes) bytes.push_back(static_cast<char>(*byte));
          pos += length;
        }
        if (all_bytes) token = std::move(bytes);
        fused = true;
        break;
      }
      case DecoderStep::Kind::kByteFallback:
        if (std::optional<uint8_t> byte = ByteToken(token)) {
          token = std::string(1, static_cast<char>(*byte));
        }
        break;
      case DecoderStep::Kind::kFuse:
        fused = true;
        break;
      case DecoderStep::Kind::kReplace:
        token = ReplaceAll(token, step.pattern, step.content);
        break;
      case DecoderStep::Kind::kStrip:
        if (!fused) {
          token = Strip(token, step);
        } else if (first) {
          DecoderStep front = step;
          front.stop = 0;
          token = Strip(token, front);
        }
        break;
      case DecoderStep::Kind::kMetaspace: {
        const bool drop =
            (first || fused) && step.prepend_scheme != PrependScheme::kNever;
        token = ReplaceAll(token, step.pattern, drop ? "" : " ");
        break;
      }
    }
  }
  return token;
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer,
                             bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string StreamDecoder::Add(int32_t id) {
  ids_.push_back(id);
  std::string text = tokenizer_.Decode(ids_, skip_special_tokens_);
  // Hold back while the newest text is empty or ends in a character that
  // may still be completed by the next bytes.
  if (text.size() <= prefix_text_.size() || EndsWithReplacementChar(text)) {
    return "";
  }
  const size_t common = CommonPrefix(prefix_text_, text);
  std::string out = text.substr(common);
  // The next window starts at the ids just emitted, so that decoders that
  // treat the first token apart see the same first token twice.
  ids_.erase(ids_.begin(), ids_.begin() + read_);
  read_ = ids_.size();
  prefix_text_ = tokenizer_.Decode(ids_, skip_special_tokens_);
  return out;
}

std::string StreamDecoder::Finish() {
  std::string text = tokenizer_.Decode(ids_, skip_special_tokens_);
  const size_t common = CommonPrefix(prefix_text_, text);
  std::string out = common < text.size() ? text.substr(common) : "";
  ids_.clear();
  read_ = 0;
  prefix_text_.clear();
  return out;
}

}  // namespace lorad::model
