// The JSON pushdown automaton. Containers take the whitespace between
// tokens and push a frame for each value at its first byte; a value frame
// pops itself on its last byte (kDone), or, for numbers and literals that
// could go on, hands the byte after it back to its parent (kEnded).
#include "json_matcher.h"

#include <algorithm>
#include <utility>

namespace lorad::model::json_internal {
namespace {

// Frame states, per kind.
enum RootState : uint8_t { kRootExpect, kRootInValue, kRootEnd, kRootDone };
enum AnyObjectState : uint8_t {
  kAoFirst,
  kAoComma,
  kAoColon,
  kAoValue,
  kAoAfter
};
enum AnyArrayState : uint8_t { kAaFirst, kAaComma, kAaAfter };
enum ObjectState : uint8_t {
  kObjOpen,
  kObjFirst,
  kObjComma,
  kObjKey,
  kObjColon,
  kObjValue,
  kObjAfter
};
enum ArrayState : uint8_t { kArrOpen, kArrFirst, kArrComma, kArrAfter };
enum StringState : uint8_t { kStrOpen, kStrBody /* 1: Unchanged() */, kStrEscape, kStrHex, kStrCont };
enum NumberState : uint8_t {
  kNumStart,
  kNumMinus,
  kNumZero,
  kNumInt,
  kNumDot,
  kNumFrac,
  kNumE,
  kNumExpSign,
  kNumExp
};
// The range of the next UTF-8 continuation byte (kStrCont's b).
enum ContRange : int32_t { kCont80BF, kContA0BF, kCont809F, kCont90BF, kCont808F };

bool IsWhitespace(uint8_t c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}
bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }
bool IsHex(uint8_t c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool InContRange(int32_t range, uint8_t c) {
  switch (range) {
    case kContA0BF:
      return c >= 0xA0 && c <= 0xBF;
    case kCont809F:
      return c >= 0x80 && c <= 0x9F;
    case kCont90BF:
      return c >= 0x90 && c <= 0xBF;
    case kCont808F:
      return c >= 0x80 && c <= 0x8F;
    default:
      return c >= 0x80 && c <= 0xBF;
  }
}

}  // namespace

std::vector<Thread> Matcher::Start() const {
  Thread thread;
  Frame root;
  root.kind = FrameKind::kRoot;
  root.state = kRootExpect;
  root.node = grammar_->root;
  thread.frames.push_back(root);
  std::vector<Thread> threads;
  threads.push_back(std::move(thread));
  return threads;
}

Frame Matcher::FrameFor(int32_t index) const {
  const Node& node = grammar_->nodes[index];
  Frame f;
  f.node = index;
  switch (node.kind) {
    case NodeKind::kAny:
      f.kind = FrameKind::kAnyValue;
      f.flag = node.object_only;
      break;
    case NodeKind::kObject:
      f.kind = FrameKind::kObject;
      break;
    case NodeKind::kArray:
      f.kind = FrameKind::kArray;
      break;
    case NodeKind::kString:
      f.kind = FrameKind::kString;
      break;
    case NodeKind::kNumber:
    case NodeKind::kInteger:
      f.kind = FrameKind::kNumber;
      f.flag = node.kind == NodeKind::kInteger;
      break;
    case NodeKind::kLiteral:
    case NodeKind::kAnyOf:  // never pushed itself: StepThread forks
      f.kind = FrameKind::kLiteral;
      break;
  }
  return f;
}

bool Matcher::Step(std::vector<Thread>& threads, uint8_t byte) {
  forks_.clear();
  size_t kept = 0;
  for (size_t i = 0; i < threads.size(); ++i) {
    if (!StepThread(threads[i], byte, forks_)) continue;
    if (kept != i) std::swap(threads[kept], threads[i]);
    ++kept;
  }
  threads.resize(kept);
  for (Thread& fork : forks_) threads.push_back(std::move(fork));
  if (threads.size() > 1) {
    size_t unique = 0;
    for (size_t i = 0; i < threads.size(); ++i) {
      bool seen = false;
      for (size_t j = 0; j < unique && !seen; ++j) {
        seen = threads[j] == threads[i];
      }
      if (seen || unique == kMaxThreads) continue;
      if (unique != i) std::swap(threads[unique], threads[i]);
      ++unique;
    }
    threads.resize(unique);
  }
  return !threads.empty();
}

bool Matcher::StepThread(Thread& t, uint8_t byte, std::vector<Thread>& forks) {
  for (;;) {
    int32_t push = -1;
    switch (Feed(t, byte, &push)) {
      case Action::kConsumed:
        t.whitespace = 0;
        return true;
      case Action::kWhitespace:
        return ++t.whitespace <= kMaxWhitespaceRun;
      case Action::kReject:
        return false;
      case Action::kDone:
      case Action::kEnded: {
        const bool consumed = push == -2;
        t.frames.pop_back();
        Frame& parent = t.frames.back();
        if (parent.kind == FrameKind::kRoot) {
          parent.state = consumed ? kRootDone : kRootEnd;
        }
        if (consumed) {
          t.whitespace = 0;
          return true;
        }
        break;  // the parent takes the byte
      }
      case Action::kAgain:
        break;
      case Action::kPush: {
        const Node& node = grammar_->nodes[push];
        if (node.kind != NodeKind::kAnyOf) {
          t.frames.push_back(FrameFor(push));
          break;
        }
        for (size_t i = 1; i < node.branches.size(); ++i) {
          Thread fork = t;
          fork.frames.push_back(FrameFor(node.branches[i]));
          if (StepThread(fork, byte, forks)) forks.push_back(std::move(fork));
        }
        t.frames.push_back(FrameFor(node.branches[0]));
        break;
      }
    }
  }
}

Matcher::Action Matcher::Feed(Thread& t, uint8_t c, int32_t* push) const {
  Frame& f = t.frames.back();
  const bool ws = IsWhitespace(c);
  // kDone reports "consumed" to StepThread through *push == -2.
  const auto done = [&] {
    *push = -2;
    return Action::kDone;
  };
  switch (f.kind) {
    case FrameKind::kRoot:
      if (f.state == kRootExpect && !ws) {
        f.state = kRootInValue;
        *push = f.node;
        return Action::kPush;
      }
      if (f.state == kRootEnd && ws) {
        f.state = kRootDone;
        return Action::kConsumed;
      }
      return Action::kReject;
    case FrameKind::kAnyValue:
    case FrameKind::kAnyObject:
    case FrameKind::kAnyArray:
      return FeedAny(t, c, push);
    case FrameKind::kObject:
      return FeedObject(f, c, push);
    case FrameKind::kArray:
      return FeedArray(f, c, push);
    case FrameKind::kString:
      switch (f.state) {
        case kStrOpen:
          if (c != '"') return Action::kReject;
          f.state = kStrBody;
          return Action::kConsumed;
        case kStrBody:
          if (c == '"') return done();
          if (c == '\\') {
            f.state = kStrEscape;
          } else if (c < 0x20) {
            return Action::kReject;
          } else if (c >= 0x80) {
            f.state = kStrCont;
            f.b = kCont80BF;
            if (c >= 0xC2 && c <= 0xDF) {
              f.a = 1;
            } else if (c >= 0xE0 && c <= 0xEF) {
              f.a = 2;
              f.b = c == 0xE0 ? kContA0BF : c == 0xED ? kCont809F : kCont80BF;
            } else if (c >= 0xF0 && c <= 0xF4) {
              f.a = 3;
              f.b = c == 0xF0 ? kCont90BF : c == 0xF4 ? kCont808F : kCont80BF;
            } else {
              return Action::kReject;
            }
          }
          return Action::kConsumed;
        case kStrCont:
          if (!InContRange(f.b, c)) return Action::kReject;
          f.b = kCont80BF;
          if (--f.a == 0) f.state = kStrBody;
          return Action::kConsumed;
        case kStrEscape:
          if (c == 'u') {
            f.state = kStrHex;
            f.a = 4;
            f.b = 0;
            return Action::kConsumed;
          }
          if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' &&
              c != 'n' && c != 'r' && c != 't') {
            return Action::kReject;
          }
          f.state = kStrBody;
          return Action::kConsumed;
        default:  // kStrHex; no surrogates (\uD800-\uDFFF)
          if (!IsHex(c) || (f.b == 1 && !(c >= '0' && c <= '7'))) {
            return Action::kReject;
          }
          f.b = f.a == 4 && (c == 'd' || c == 'D');
          if (--f.a == 0) f.state = kStrBody;
          return Action::kConsumed;
      }
    case FrameKind::kNumber: {
      const bool integer = f.flag;
      const bool digit = IsDigit(c);
      switch (f.state) {
        case kNumStart:
        case kNumMinus:
          if (c == '-' && f.state == kNumStart) {
            f.state = kNumMinus;
            return Action::kConsumed;
          }
          if (c == '0') {
            if (integer) return done();
            f.state = kNumZero;
            return Action::kConsumed;
          }
          if (!digit) return Action::kReject;
          f.state = kNumInt;
          f.a = 1;
          return Action::kConsumed;
        case kNumDot:
          if (!digit) return Action::kReject;
          f.state = kNumFrac;
          f.a = 1;
          return Action::kConsumed;
        case kNumE:
          if (c == '+' || c == '-') {
            f.state = kNumExpSign;
            return Action::kConsumed;
          }
          [[fallthrough]];
        case kNumExpSign:
          if (!digit) return Action::kReject;
          f.state = kNumExp;
          f.a = 1;
          return Action::kConsumed;
        case kNumExp:
          if (!digit) return Action::kEnded;
          return done();  // kMaxExponentDigits == 2
        default:  // kNumZero, kNumInt, kNumFrac: accepting
          if (digit && f.state != kNumZero && f.a < kMaxIntegerDigits) {
            ++f.a;
            if (integer && f.a == kMaxIntegerDigits) return done();
            return Action::kConsumed;
          }
          if (!integer && c == '.' && f.state != kNumFrac) {
            f.state = kNumDot;
            return Action::kConsumed;
          }
          if (!integer && (c == 'e' || c == 'E')) {
            f.state = kNumE;
            return Action::kConsumed;
          }
          return Action::kEnded;
      }
    }
    case FrameKind::kLiteral: {
      const LiteralTrie& trie = grammar_->nodes[f.node].literal;
      const int32_t child = trie.Child(f.a, c);
      if (child < 0) {
        return trie.nodes[f.a].accepting ? Action::kEnded : Action::kReject;
      }
      f.a = child;
      const LiteralTrie::Node& at = trie.nodes[child];
      if (at.accepting && at.children.empty()) return done();
      return Action::kConsumed;
    }
  }
  return Action::kReject;
}

Matcher::Action Matcher::FeedAny(Thread& t, uint8_t c, int32_t* push) const {
  Frame& f = t.frames.back();
  const bool ws = IsWhitespace(c);
  const auto done = [&] {
    *push = -2;
    return Action::kDone;
  };
  if (f.kind == FrameKind::kAnyValue) {
    const bool deep = t.frames.size() >= static_cast<size_t>(kMaxAnyDepth);
    if (c == '{' && !deep) {
      f.kind = FrameKind::kAnyObject;
      f.state = kAoFirst;
      return Action::kConsumed;
    }
    if (f.flag) return Action::kReject;  // an object only
    if (c == '[' && !deep) {
      f.kind = FrameKind::kAnyArray;
      f.state = kAaFirst;
      return Action::kConsumed;
    }
    if (c == '"') {
      f.kind = FrameKind::kString;
      f.state = kStrBody;
      return Action::kConsumed;
    }
    if (c == '-' || IsDigit(c)) {
      f = Frame();
      f.kind = FrameKind::kNumber;
      return Action::kAgain;
    }
    if (c == 't' || c == 'f' || c == 'n') {
      f = Frame();
      f.kind = FrameKind::kLiteral;
      f.node = grammar_->any_literal;
      return Action::kAgain;
    }
    return Action::kReject;
  }
  if (f.kind == FrameKind::kAnyObject) {
    switch (f.state) {
      case kAoFirst:
      case kAoComma:
        if (ws) return Action::kWhitespace;
        if (c == '}' && f.state == kAoFirst) return done();
        if (c != '"') return Action::kReject;
        f.state = kAoColon;
        {
          Frame key;
          key.kind = FrameKind::kString;
          key.state = kStrBody;
          t.frames.push_back(key);
        }
        return Action::kConsumed;
      case kAoColon:
        if (ws) return Action::kWhitespace;
        if (c != ':') return Action::kReject;
        f.state = kAoValue;
        return Action::kConsumed;
      case kAoValue:
        if (ws) return Action::kWhitespace;
        f.state = kAoAfter;
        *push = grammar_->any_node;
        return Action::kPush;
      default:  // kAoAfter
        if (ws) return Action::kWhitespace;
        if (c == '}') return done();
        if (c != ',') return Action::kReject;
        f.state = kAoComma;
        return Action::kConsumed;
    }
  }
  // kAnyArray
  if (ws) return Action::kWhitespace;
  switch (f.state) {
    case kAaFirst:
    case kAaComma:
      if (c == ']' && f.state == kAaFirst) return done();
      f.state = kAaAfter;
      *push = grammar_->any_node;
      return Action::kPush;
    default:
      if (c == ']') return done();
      if (c != ',') return Action::kReject;
      f.state = kAaComma;
      return Action::kConsumed;
  }
}

Matcher::Action Matcher::FeedObject(Frame& f, uint8_t c, int32_t* push) const {
  const Node& node = grammar_->nodes[f.node];
  const bool ws = IsWhitespace(c);
  switch (f.state) {
    case kObjOpen:
      if (c != '{') return Action::kReject;
      f.state = kObjFirst;
      return Action::kConsumed;
    case kObjFirst:
    case kObjComma:
      if (ws) return Action::kWhitespace;
      if (c == '}' && f.state == kObjFirst && node.required_count[f.a] == 0) {
        *push = -2;
        return Action::kDone;
      }
      if (c != '"' || node.candidates[f.a] == 0) return Action::kReject;
      f.state = kObjKey;
      f.mask = node.candidates[f.a];
      f.b = 1;
      return Action::kConsumed;
    case kObjKey: {
      uint64_t kept = 0;
      for (uint64_t m = f.mask; m != 0; m &= m - 1) {
        const int j = __builtin_ctzll(m);
        const std::string& key = node.properties[j].key_json;
        if (static_cast<uint8_t>(key[f.b]) == c) kept |= uint64_t{1} << j;
      }
      if (kept == 0) return Action::kReject;
      f.mask = kept;
      ++f.b;
      for (uint64_t m = kept; m != 0; m &= m - 1) {
        const int j = __builtin_ctzll(m);
        if (node.properties[j].key_json.size() == static_cast<size_t>(f.b)) {
          f.state = kObjColon;
          f.a = j + 1;
          f.b = j;
          f.mask = 0;
          break;
        }
      }
      return Action::kConsumed;
    }
    case kObjColon:
      if (ws) return Action::kWhitespace;
      if (c != ':') return Action::kReject;
      f.state = kObjValue;
      return Action::kConsumed;
    case kObjValue:
      if (ws) return Action::kWhitespace;
      f.state = kObjAfter;
      *push = node.properties[f.b].value;
      return Action::kPush;
    default:  // kObjAfter
      if (ws) return Action::kWhitespace;
      if (c == ',' && node.candidates[f.a] != 0) {
        f.state = kObjComma;
        return Action::kConsumed;
      }
      if (c == '}' && node.required_count[f.a] == 0) {
        *push = -2;
        return Action::kDone;
      }
      return Action::kReject;
  }
}

Matcher::Action Matcher::FeedArray(Frame& f, uint8_t c, int32_t* push) const {
  const Node& node = grammar_->nodes[f.node];
  const bool ws = IsWhitespace(c);
  switch (f.state) {
    case kArrOpen:
      if (c != '[') return Action::kReject;
      f.state = kArrFirst;
      return Action::kConsumed;
    case kArrFirst:
    case kArrComma:
      if (ws) return Action::kWhitespace;
      if (f.state == kArrFirst && c == ']' && node.min_items == 0) {
        *push = -2;
        return Action::kDone;
      }
      if (f.a >= node.max_items) return Action::kReject;
      ++f.a;
      f.state = kArrAfter;
      *push = node.items;
      return Action::kPush;
    default:  // kArrAfter
      if (ws) return Action::kWhitespace;
      if (c == ',' && f.a < node.max_items) {
        f.state = kArrComma;
        return Action::kConsumed;
      }
      if (c == ']' && f.a >= node.min_items) {
        *push = -2;
        return Action::kDone;
      }
      return Action::kReject;
  }
}

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
          return SatAdd(node.properties[f.b].entry_cost -
                            static_cast<int64_t>(
                                node.properties[f.b].key_json.size()),
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
