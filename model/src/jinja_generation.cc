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
  marks_->emplace_back(start,
                       CountCodePoints(std::string_view(*out).substr(before)));
  return absl::OkStatus();
}

std::vector<std::pair<size_t, size_t>> GenerationSpans(
    const std::string& out,
    const std::vector<std::pair<size_t, size_t>>& marks) {
  std::vector<std::pair<size_t, size_t>> spans;
  spans.reserve(marks.size());
  for (const auto& [start, code_points] : marks) {
    // Each block's code points were charged as output when rendered, so
    // these walks are bounded by the render's limits.
    size_t end = std::min(start, out.size());
    for (size_t k = 0; k < code_points && end < out.size(); ++k) {
      ++end;
      while (end < out.size() && IsContinuation(out[end])) ++end;
    }
    spans.emplace_back(std::min(start, out.size()), end);
  }
  return spans;
}

bool Template::has_generation() const { return parsed_->has_generation; }

}  // namespace lorad::model::jinja
