// The JSON pushdown automaton: threads, forks at anyOf, and the value
// frames (strings, numbers, literals). Containers take the whitespace
// between tokens and push a frame for each value at its first byte; a value
// frame pops itself on its last byte (kDone), or, for numbers and literals
// that could go on, hands the byte after it back to its parent (kEnded).
#include "json_matcher.h"

#include <algorithm>
#include <utility>

namespace lorad::model::json_internal {
namespace {

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
  const bool ws = IsJsonWhitespace(c);
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
        default:          // kNumZero, kNumInt, kNumFrac: accepting
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

}  // namespace lorad::model::json_internal
