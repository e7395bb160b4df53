#include "live_line.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include "progress.h"

namespace lorad::client {

int TerminalWidth(std::FILE* stream) {
  int fd = fileno(stream);
  if (fd < 0 || !isatty(fd)) return 0;
  winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return 80;
  return ws.ws_col > 0 ? ws.ws_col : 80;
}

LiveLine::LiveLine(std::FILE* stream, bool enabled)
    : stream_(stream), enabled_(enabled) {}

LiveLine::~LiveLine() { Clear(); }

void LiveLine::Erase() {
  if (!current_.empty()) std::fputs("\r\033[K", stream_);
}

void LiveLine::Update(std::string_view text) {
  if (!enabled_) return;
  Erase();
  // Re-read the width each time: the terminal may have been resized.
  current_ = FitToWidth(std::string(text), TerminalWidth(stream_));
  std::fputs(current_.c_str(), stream_);
  std::fflush(stream_);
}

void LiveLine::PrintAbove(std::string_view text) {
  if (!enabled_) return;
  Erase();
  std::fwrite(text.data(), 1, text.size(), stream_);
  std::fputc('\n', stream_);
  if (!current_.empty()) std::fputs(current_.c_str(), stream_);
  std::fflush(stream_);
}

void LiveLine::Clear() {
  if (!enabled_) return;
  Erase();
  current_.clear();
  std::fflush(stream_);
}

}  // namespace lorad::client
