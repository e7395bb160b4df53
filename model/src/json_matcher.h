// The byte-level pushdown automaton for a compiled JSON grammar: a set of
// threads (one per live anyOf branch), each a stack of frames, advanced one
// output byte at a time; and, for any state, the fewest bytes that finish
// the output. Not part of the public API.
#ifndef LORAD_MODEL_SRC_JSON_MATCHER_H_
#define LORAD_MODEL_SRC_JSON_MATCHER_H_

#include <cstdint>
#include <vector>

#include "json_grammar.h"

namespace lorad::model::json_internal {

enum class FrameKind : uint8_t {
  kRoot,
  kAnyValue,   // a value of any type; becomes the frame its first byte picks
  kAnyObject,  // an object with any keys and values
  kAnyArray,
  kObject,  // an object schema
  kArray,   // an array schema
  kString,
  kNumber,  // integer when `flag` is set
  kLiteral,
};

struct Frame {
  FrameKind kind = FrameKind::kRoot;
  uint8_t state = 0;
  uint8_t flag = 0;
  int32_t node = -1;
  int32_t a = 0;      // per kind: next property, item count, digits, ...
  int32_t b = 0;      // per kind: key byte or chosen property, ...
  uint64_t mask = 0;  // kObject: the keys still matching

  bool operator==(const Frame& o) const {
    return kind == o.kind && state == o.state && flag == o.flag &&
           node == o.node && a == o.a && b == o.b && mask == o.mask;
  }
};

struct Thread {
  std::vector<Frame> frames;
  int32_t whitespace = 0;  // the current run

  bool operator==(const Thread& o) const {
    return whitespace == o.whitespace && frames == o.frames;
  }
};

// Frame states, per kind (Frame::state).
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
enum StringState : uint8_t {
  kStrOpen,
  kStrBody,
  kStrEscape,
  kStrHex,
  kStrCont
};
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
enum ContRange : int32_t {
  kCont80BF,
  kContA0BF,
  kCont809F,
  kCont90BF,
  kCont808F
};

inline bool IsJsonWhitespace(uint8_t c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

// At most this many threads are kept (the first ones); more would come
// only from deeply nested anyOf.
inline constexpr size_t kMaxThreads = 32;

// Walks a grammar. Not thread-safe (scratch space); cheap to copy.
class Matcher {
 public:
  explicit Matcher(const Grammar& grammar) : grammar_(&grammar) {}

  // The state before any output.
  std::vector<Thread> Start() const;
  // Advances `threads` by one byte; false (and `threads` empty) when no
  // thread may take it.
  bool Step(std::vector<Thread>& threads, uint8_t byte);
  // The fewest bytes that make the output complete (kInfinity: never).
  int64_t Cost(const std::vector<Thread>& threads) const;
  bool Complete(const std::vector<Thread>& threads) const;
  // The bytes the costliest thread still needs.
  int64_t MaxCost(const std::vector<Thread>& threads) const;
  // Whether Step(threads, byte) would leave `threads` as they are (a plain
  // character inside a string), so a mask may share the state.
  bool Unchanged(const std::vector<Thread>& threads, uint8_t byte) const {
    return byte >= 0x20 && byte < 0x80 && byte != '"' && byte != '\\' &&
           InStringBody(threads);
  }
  // One thread, inside a string, not in an escape or a character.
  static bool InStringBody(const std::vector<Thread>& threads) {
    if (threads.size() != 1) return false;
    const Frame& top = threads[0].frames.back();
    return top.kind == FrameKind::kString && top.state == kStrBody;
  }

 private:
  enum class Action {
    kConsumed,
    kWhitespace,
    kReject,
    kDone,
    kEnded,
    kAgain,
    kPush
  };
  bool StepThread(Thread& thread, uint8_t byte, std::vector<Thread>& forks);
  // Feeds `byte` to the top frame; kPush sets *push to the node to open.
  Action Feed(Thread& thread, uint8_t byte, int32_t* push) const;
  Action FeedObject(Frame& f, uint8_t byte, int32_t* push) const;
  Action FeedArray(Frame& f, uint8_t byte, int32_t* push) const;
  Action FeedAny(Thread& thread, uint8_t byte, int32_t* push) const;
  Frame FrameFor(int32_t node) const;
  int64_t FrameCost(const Frame& f, bool top) const;
  int64_t ThreadCost(const Thread& t) const;

  const Grammar* grammar_;
  std::vector<Thread> forks_;
};

}  // namespace lorad::model::json_internal

#endif  // LORAD_MODEL_SRC_JSON_MATCHER_H_
