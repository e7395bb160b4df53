// The bytes that finish the output from a matcher state: per frame, from
// the grammar's precomputed minimums.
#include <algorithm>
#include <utility>

#include "json_matcher.h"

namespace lorad::model::json_internal {

int64_t Matcher::FrameCost(const Frame& f, bool top) const {
  switch (f.kind) {
    case FrameKind::kRoot:
      if (f.state == kRootExpect) return grammar_->nodes[f.node].min_top;
      return f.state == kRootEnd ? 1 : 0;
    case FrameKind::kAnyValue:
      return f.flag || top ? 2 : 1;
    case FrameKind::kAnyObject: {
      // {"":0}, after '{' / ',' / a key / ':' / a value.
      static constexpr int64_t kCost[] = {1, 5, 3, 2, 1};
      return kCost[f.state];
    }
    case FrameKind::kAnyArray: {
      static constexpr int64_t kCost[] = {1, 2, 1};
      return kCost[f.state];
    }
    case FrameKind::kString:
      switch (f.state) {
        case kStrOpen:
        case kStrEscape:
          return 2;
        case kStrHex:
        case kStrCont:
          return f.a + 1;
        default:
          return 1;
      }
    case FrameKind::kNumber: {
      const bool needs_digit = f.state == kNumStart || f.state == kNumMinus ||
                               f.state == kNumDot || f.state == kNumE ||
                               f.state == kNumExpSign;
      // At the top a number ends at a whitespace byte, except an integer's
      // "0", which nothing may follow.
      const bool end_byte =
          top && !(f.flag && (f.state == kNumStart || f.state == kNumMinus));
      return (needs_digit ? 1 : 0) + (end_byte ? 1 : 0);
    }
    case FrameKind::kLiteral: {
      const LiteralTrie::Node& at = grammar_->nodes[f.node].literal.nodes[f.a];
      return top ? at.min_rest_top : at.min_rest;
    }
    case FrameKind::kObject: {
      const Node& node = grammar_->nodes[f.node];
      switch (f.state) {
        case kObjOpen:
          return node.min_len;
        case kObjFirst:
          return node.AfterOpenCost(f.a);
        case kObjComma:
          return node.AfterCommaCost(f.a);
        case kObjKey: {
          int64_t best = kInfinity;
          for (uint64_t m = f.mask; m != 0; m &= m - 1) {
            const int j = __builtin_ctzll(m);
            const Property& p = node.properties[j];
            best = std::min(
                best, SatAdd(p.entry_cost - f.b, node.AfterValueCost(j + 1)));
          }
          return best;
        }
        case kObjColon:
          return SatAdd(
              node.properties[f.b].entry_cost -
                  static_cast<int64_t>(node.properties[f.b].key_json.size()),
              node.AfterValueCost(f.a));
        case kObjValue:
          return SatAdd(grammar_->nodes[node.properties[f.b].value].min_len,
                        node.AfterValueCost(f.a));
        default:
          return node.AfterValueCost(f.a);
      }
    }
    case FrameKind::kArray: {
      const Node& node = grammar_->nodes[f.node];
      switch (f.state) {
        case kArrOpen:
          return node.min_len;
        case kArrFirst:
          return node.ArrayAfterOpenCost();
        case kArrComma:
          return node.ArrayAfterCommaCost(f.a);
        default:
          return node.ArrayAfterItemCost(f.a);
      }
    }
  }
  return kInfinity;
}

int64_t Matcher::ThreadCost(const Thread& t) const {
  int64_t cost = 0;
  for (size_t i = 0; i < t.frames.size(); ++i) {
    cost = SatAdd(cost, FrameCost(t.frames[i], i == 1));
  }
  return cost;
}

int64_t Matcher::Cost(const std::vector<Thread>& threads) const {
  int64_t best = kInfinity;
  for (const Thread& t : threads) best = std::min(best, ThreadCost(t));
  return best;
}

int64_t Matcher::MaxCost(const std::vector<Thread>& threads) const {
  int64_t most = 0;
  for (const Thread& t : threads) most = std::max(most, ThreadCost(t));
  return most;
}

bool Matcher::Complete(const std::vector<Thread>& threads) const {
  for (const Thread& t : threads) {
    if (t.frames.size() == 1 && t.frames[0].state == kRootDone) return true;
  }
  return false;
}

}  // namespace lorad::model::json_internal
