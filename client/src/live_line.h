// One line of a terminal that is redrawn in place with '\r' (progress bars),
// with other lines printed above it. When disabled it prints nothing.
// Not thread-safe.
#ifndef LORAD_CLIENT_LIVE_LINE_H_
#define LORAD_CLIENT_LIVE_LINE_H_

#include <cstdio>
#include <string>
#include <string_view>

namespace lorad::client {

// The width of the terminal behind `stream`, or 0 when it is not one.
int TerminalWidth(std::FILE* stream);

class LiveLine {
 public:
  LiveLine(std::FILE* stream, bool enabled);
  ~LiveLine();

  LiveLine(const LiveLine&) = delete;
  LiveLine& operator=(const LiveLine&) = delete;

  bool enabled() const { return enabled_; }

  // Replaces the live line with `text` (cut to the terminal width).
  void Update(std::string_view text);
  // Prints `text` and a newline above the live line, then redraws it.
  void PrintAbove(std::string_view text);
  // Erases the live line for good (until the next Update).
  void Clear();

 private:
  void Erase();

  std::FILE* stream_;
  bool enabled_;
  std::string current_;
};

}  // namespace lorad::client

#endif  // LORAD_CLIENT_LIVE_LINE_H_
