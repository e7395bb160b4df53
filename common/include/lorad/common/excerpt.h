// Quoting outside input in error messages: a bounded, valid UTF-8 excerpt,
// so that a hostile 4 MiB name does not become a 4 MiB status message (and
// an invalid byte does not break a proto string field). Pure, thread-safe.
#ifndef LORAD_COMMON_EXCERPT_H_
#define LORAD_COMMON_EXCERPT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace lorad {

// How much of a user string an error message quotes by default.
inline constexpr size_t kExcerptBytes = 64;

// At most `max_bytes` of `s` (plus "..." when cut), as valid UTF-8: a byte
// that does not start a valid sequence becomes '?'; control characters
// become '?' too, so the excerpt stays on one line.
std::string Excerpt(std::string_view s, size_t max_bytes = kExcerptBytes);

// Excerpt(s) in double quotes: "abc".
std::string QuotedExcerpt(std::string_view s, size_t max_bytes = kExcerptBytes);

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one
// (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i);

// Whether all of `s` is valid UTF-8.
bool IsValidUtf8(std::string_view s);

}  // namespace lorad

#endif  // LORAD_COMMON_EXCERPT_H_
