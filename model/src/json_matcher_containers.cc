// The container frames of the JSON automaton: objects and arrays of a
// schema, and of any JSON value.
#include <algorithm>
#include <utility>

#include "json_matcher.h"

namespace lorad::model::json_internal {

Matcher::Action Matcher::FeedAny(Thread& t, uint8_t c, int32_t* push) const {
  Frame& f = t.frames.back();
  const bool ws = IsJsonWhitespace(c);
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
    if (c == '-' || (c >= '0' && c <= '9')) {
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
  const bool ws = IsJsonWhitespace(c);
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
        if (static_cast<size_t>(f.b) < key.size() &&
            static_cast<uint8_t>(key[f.b]) == c) {
          kept |= uint64_t{1} << j;
        }
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
  const bool ws = IsJsonWhitespace(c);
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

}  // namespace lorad::model::json_internal
