// {% generation %} blocks: rendered in place (in a scope of their own, as
// jinja2 renders the body as a caller macro), and, when a render asks for
// them, their spans as transformers' AssistantTracker reports them.
//
// transformers renders the block's body as a caller macro (into a buffer of
// its own), then records (start, start + len(body)) where start is the
// length of what the template generator has yielded so far: the top-level
// output before the block, or before the top-level output that holds it.
// Both counts are Python code points; spans here are bytes of the output.
#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jinja_internal.h"
#include "lorad/common/status_macros.h"

namespace lorad::model::jinja {
namespace {

bool IsContinuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

size_t CountCodePoints(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += IsContinuation(c) ? 0 : 1;
  return n;
}

}  // namespace

absl::Status Runtime::ExecGeneration(const Node& n, Scope& scope,
                                     std::string* out) {
  // The body is a caller macro in jinja2: what it sets stays inside.
  Scope inner;
  inner.parent = &scope;
  if (marks_ == nullptr) return Exec(n.body, inner, out);
  const size_t start = frozen_root_.value_or(root_->size());
  const bool freezes = out == root_ && !frozen_root_.has_value();
  if (freezes) frozen_root_ = start;
  const size_t before = out->size();
  absl::Status s = Exec(n.body, inner, out);
  if (freezes) frozen_root_.reset();
  LORAD_RETURN_IF_ERROR(s);
  // The mark, and later its span, count against the render's allocations.
  LORAD_RETURN_IF_ERROR(
      Charge(2 * sizeof(std::pair<size_t, size_t>), n.line, n.col));
  marks_->emplace_back(start,
                       CountCodePoints(std::string_view(*out).substr(before)));
  return absl::OkStatus();
}

std::vector<std::pair<size_t, size_t>> GenerationSpans(
    const std::string& out,
    const std::vector<std::pair<size_t, size_t>>& marks) {
  // Two passes over the output, answering the marks in order (nested
  // blocks may repeat the same text, so no mark walks it on its own): the
  // code point index of each start, then the byte offset of each end.
  const size_t m = marks.size();
  std::vector<size_t> order(m);
  for (size_t i = 0; i < m; ++i) order[i] = i;
  std::vector<size_t> begin(m), end_cp(m), end(m);
  for (size_t i = 0; i < m; ++i)
    begin[i] = std::min(marks[i].first, out.size());
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return begin[a] < begin[b]; });
  size_t byte = 0, cp = 0;
  for (size_t i : order) {
    for (; byte < begin[i]; ++byte) cp += IsContinuation(out[byte]) ? 0 : 1;
    end_cp[i] = cp + std::min(marks[i].second, out.size());
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return end_cp[a] < end_cp[b]; });
  // `byte` is where code point `cp` starts (or the end of the output).
  byte = 0;
  cp = 0;
  for (size_t i : order) {
    while (cp < end_cp[i] && byte < out.size()) {
      ++byte;
      while (byte < out.size() && IsContinuation(out[byte])) ++byte;
      ++cp;
    }
    end[i] = byte;
  }
  std::vector<std::pair<size_t, size_t>> spans;
  spans.reserve(m);
  for (size_t i = 0; i < m; ++i) spans.emplace_back(begin[i], end[i]);
  return spans;
}

bool Template::has_generation() const { return parsed_->has_generation; }

}  // namespace lorad::model::jinja
