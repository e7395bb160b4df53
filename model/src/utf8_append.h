// Appending one Unicode code point as UTF-8, shared by the tokenizer and the
// Jinja interpreter (private to lorad::model).
#ifndef LORAD_MODEL_SRC_UTF8_APPEND_H_
#define LORAD_MODEL_SRC_UTF8_APPEND_H_

#include <cstdint>
#include <string>

namespace lorad::model {

// `cp` must be below 0x110000; surrogates are written as they are.
inline void AppendCodePoint(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace lorad::model

#endif  // LORAD_MODEL_SRC_UTF8_APPEND_H_
