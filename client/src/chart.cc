#include "chart.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "png.h"
#include "progress.h"

namespace lorad::client {
namespace {

struct Rgb {
  uint8_t r, g, b;
};
constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kInk{40, 40, 40};
constexpr Rgb kGrid{225, 225, 225};
constexpr Rgb kLossColor{31, 119, 180};
constexpr Rgb kEvalColor{214, 39, 40};
constexpr Rgb kMemoryColor{44, 160, 44};

// A 3x5 pixel font: five rows of three cells per glyph, '#' inked.
const std::map<char, const char*>& Font() {
  static const auto* font = new std::map<char, const char*>{
      {'0', "####.##.##.####"}, {'1', ".#.##..#..#.###"},
      {'2', "###..#####..###"}, {'3', "###..####..####"},
      {'4', "#.##.####..#..#"}, {'5', "####..###..####"},
      {'6', "####..####.####"}, {'7', "###..#..#.#..#."},
      {'8', "####.#####.####"}, {'9', "####.####..####"},
      {'.', ".............#."}, {'-', "......###......"},
      {'+', "....#.###.#...."}, {':', "....#.....#...."},
      {'/', "..#..#.#.#..#.."}, {'(', ".#.#..#..#...#."},
      {')', ".#...#..#..#.#."}, {'A', ".#.#.#####.##.#"},
      {'B', "##.#.###.#.###."}, {'C', ".###..#..#...##"},
      {'D', "##.#.##.##.###."}, {'E', "####..##.#..###"},
      {'F', "####..##.#..#.."}, {'G', ".###..#.##.#.##"},
      {'H', "#.##.#####.##.#"}, {'I', "###.#..#..#.###"},
      {'J', "..#..#..##.#.#."}, {'Q', ".#.#.##.##.#..#"},
      {'Z', "###..#.#.#..###"}, {'K', "#.##.###.#.##.#"},
      {'L', "#..#..#..#..###"}, {'M', "#.########.##.#"},
      {'N', "##.#.##.##.##.#"}, {'O', ".#.#.##.##.#.#."},
      {'P', "##.#.###.#..#.."}, {'R', "##.#.###.#.##.#"},
      {'S', ".###...#...###."}, {'T', "###.#..#..#..#."},
      {'U', "#.##.##.##.####"}, {'V', "#.##.##.##.#.#."},
      {'W', "#.##.########.#"}, {'X', "#.##.#.#.#.##.#"},
      {'Y', "#.##.#.#..#..#."},
  };
  return *font;
}

class Canvas {
 public:
  Canvas(int width, int height)
      : width_(width), height_(height), rgb_(width * height * 3, 255) {}

  void Set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    uint8_t* p = &rgb_[(static_cast<size_t>(y) * width_ + x) * 3];
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  }
  void Fill(int x0, int y0, int x1, int y1, Rgb c) {
    for (int y = y0; y <= y1; ++y) {
      for (int x = x0; x <= x1; ++x) Set(x, y, c);
    }
  }
  // A line `thick` pixels wide (Bresenham with a square brush).
  void Line(int x0, int y0, int x1, int y1, Rgb c, int thick = 1) {
    int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    while (true) {
      Fill(x0 - thick / 2, y0 - thick / 2, x0 + (thick - 1) / 2,
           y0 + (thick - 1) / 2, c);
      if (x0 == x1 && y0 == y1) break;
      int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
  // Text at `scale` pixels per font cell; returns the width drawn.
  int Text(int x, int y, const std::string& text, Rgb c, int scale = 2) {
    int cx = x;
    for (char ch : absl::AsciiStrToUpper(text)) {
      auto it = Font().find(ch);
      if (it != Font().end()) {
        const std::string glyph = it->second;
        for (int row = 0; row < 5; ++row) {
          for (int col = 0; col < 3; ++col) {
            size_t i = static_cast<size_t>(row * 3 + col);
            if (i < glyph.size() && glyph[i] == '#') {
              Fill(cx + col * scale, y + row * scale,
                   cx + col * scale + scale - 1, y + row * scale + scale - 1,
                   c);
            }
          }
        }
      }
      cx += 4 * scale;
    }
    return cx - x;
  }
  static int TextWidth(const std::string& text, int scale = 2) {
    return static_cast<int>(text.size()) * 4 * scale;
  }
  const std::vector<uint8_t>& rgb() const { return rgb_; }

 private:
  int width_, height_;
  std::vector<uint8_t> rgb_;
};

struct Range {
  double lo = 0, hi = 1;
};

Range RangeOf(const std::vector<const Curve*>& curves, bool x) {
  Range r{INFINITY, -INFINITY};
  for (const Curve* c : curves) {
    for (const auto& [sx, sy] : *c) {
      double v = x ? sx : sy;
      if (!std::isfinite(v)) continue;
      r.lo = std::min(r.lo, v);
      r.hi = std::max(r.hi, v);
    }
  }
  if (!std::isfinite(r.lo)) return {0, 1};
  if (r.hi - r.lo < 1e-9) {
    r.lo -= 0.5;
    r.hi += 0.5;
  }
  return r;
}

std::string Tick(double v) {
  if (std::abs(v) >= 1000 || (std::abs(v) < 0.01 && v != 0)) {
    return absl::StrFormat("%.1e", v);
  }
  return absl::StrFormat("%.4g", v);
}

// One framed plot: curves inside (x0,y0)-(x1,y1), 5 y ticks, 6 x ticks.
void Panel(Canvas& canvas, int x0, int y0, int x1, int y1, Range xs, Range ys,
           const std::vector<std::pair<const Curve*, Rgb>>& curves) {
  for (int i = 0; i <= 4; ++i) {
    int y = y1 - (y1 - y0) * i / 4;
    canvas.Line(x0, y, x1, y, kGrid);
    std::string label = Tick(ys.lo + (ys.hi - ys.lo) * i / 4);
    canvas.Text(x0 - 8 - Canvas::TextWidth(label), y - 5, label, kInk);
  }
  for (int i = 0; i <= 5; ++i) {
    int x = x0 + (x1 - x0) * i / 5;
    canvas.Line(x, y0, x, y1, kGrid);
    const double at = xs.lo + (xs.hi - xs.lo) * i / 5;
    std::string label =
        xs.hi - xs.lo >= 10 ? absl::StrCat(std::lround(at)) : Tick(at);
    canvas.Text(x - Canvas::TextWidth(label) / 2, y1 + 8, label, kInk);
  }
  canvas.Line(x0, y0, x0, y1, kInk);
  canvas.Line(x0, y1, x1, y1, kInk);
  canvas.Line(x0, y0, x1, y0, kInk);
  canvas.Line(x1, y0, x1, y1, kInk);
  auto px = [&](double v) {
    return x0 + static_cast<int>(
                    std::lround((v - xs.lo) / (xs.hi - xs.lo) * (x1 - x0)));
  };
  auto py = [&](double v) {
    return y1 - static_cast<int>(
                    std::lround((v - ys.lo) / (ys.hi - ys.lo) * (y1 - y0)));
  };
  for (const auto& [curve, color] : curves) {
    for (size_t i = 0; i < curve->size(); ++i) {
      int x = px((*curve)[i].first), y = py((*curve)[i].second);
      if (i > 0) {
        canvas.Line(px((*curve)[i - 1].first), py((*curve)[i - 1].second), x, y,
                    color, 2);
      }
      if (curve->size() < 40) canvas.Fill(x - 2, y - 2, x + 2, y + 2, color);
    }
  }
}

}  // namespace

JobCurves CurvesFromEvents(const std::vector<v1::JobEvent>& events) {
  JobCurves curves;
  for (const v1::JobEvent& event : events) {
    if (event.has_step()) {
      const double step = event.step().step();
      curves.loss.emplace_back(step, event.step().loss());
      const int64_t bytes = DisplayedMemoryBytes(event.memory());
      if (bytes > 0) {
        curves.memory_mib.emplace_back(step, bytes / (1024.0 * 1024.0));
      }
    } else if (event.has_eval()) {
      curves.eval_loss.emplace_back(event.eval().step(),
                                    event.eval().eval_loss());
    }
  }
  return curves;
}

absl::StatusOr<std::string> RenderCurvesPng(const JobCurves& curves,
                                            const std::string& title, int width,
                                            int height) {
  if (curves.loss.empty()) {
    return absl::InvalidArgumentError("the job has no training steps to plot");
  }
  if (width < 200 || height < 160) {
    return absl::InvalidArgumentError(
        absl::StrCat("plot size ", width, "x", height, " is below 200x160"));
  }
  Canvas canvas(width, height);
  canvas.Fill(0, 0, width - 1, height - 1, kWhite);
  canvas.Text(20, 12, title, kInk, 3);
  const int left = 110, right = width - 30;
  const bool with_memory = !curves.memory_mib.empty();
  const int loss_top = 60;
  const int loss_bottom =
      with_memory ? loss_top + (height - 140) * 3 / 5 : height - 60;
  const Range steps =
      RangeOf({&curves.loss, &curves.eval_loss, &curves.memory_mib}, true);
  Range loss = RangeOf({&curves.loss, &curves.eval_loss}, false);
  loss.lo = std::min(loss.lo, 0.0);
  Panel(canvas, left, loss_top, right, loss_bottom, steps, loss,
        {{&curves.loss, kLossColor}, {&curves.eval_loss, kEvalColor}});
  int lx = right - 260;
  canvas.Fill(lx, loss_top + 12, lx + 18, loss_top + 16, kLossColor);
  lx += 26 + canvas.Text(lx + 26, loss_top + 10, "loss", kInk);
  if (!curves.eval_loss.empty()) {
    canvas.Fill(lx + 16, loss_top + 12, lx + 34, loss_top + 16, kEvalColor);
    canvas.Text(lx + 42, loss_top + 10, "eval loss", kInk);
  }
  if (with_memory) {
    const int mem_top = loss_bottom + 50, mem_bottom = height - 40;
    Range mem = RangeOf({&curves.memory_mib}, false);
    mem.lo = std::min(mem.lo, 0.0);
    Panel(canvas, left, mem_top, right, mem_bottom, steps, mem,
          {{&curves.memory_mib, kMemoryColor}});
    canvas.Fill(right - 260, mem_top + 12, right - 242, mem_top + 16,
                kMemoryColor);
    canvas.Text(right - 234, mem_top + 10, "memory (MiB)", kInk);
  }
  canvas.Text(left, height - 18, "step", kInk);
  return EncodePng(width, height, canvas.rgb());
}

std::string RenderTextChart(const Curve& loss, int width, int height) {
  if (loss.empty() || width < 2 || height < 2) return "";
  const Range xs = RangeOf({&loss}, true);
  const Range ys = RangeOf({&loss}, false);
  std::vector<std::string> grid(height, std::string(width, ' '));
  for (const auto& [x, y] : loss) {
    if (!std::isfinite(y)) continue;
    int col = static_cast<int>(
        std::lround((x - xs.lo) / (xs.hi - xs.lo) * (width - 1)));
    int row = static_cast<int>(
        std::lround((ys.hi - y) / (ys.hi - ys.lo) * (height - 1)));
    grid[std::clamp(row, 0, height - 1)][std::clamp(col, 0, width - 1)] = '*';
  }
  std::string out = "loss\n";
  for (int row = 0; row < height; ++row) {
    std::string label;
    if (row == 0) label = Tick(ys.hi);
    if (row == height - 1) label = Tick(ys.lo);
    std::string line = absl::StrFormat("%9s |%s", label, grid[row]);
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&out, line, "\n");
  }
  absl::StrAppendFormat(&out, "%9s +%s\n", "", std::string(width, '-'));
  std::string lo = Tick(xs.lo), hi = Tick(xs.hi);
  int gap = std::max(1, width - static_cast<int>(lo.size() + hi.size()));
  absl::StrAppendFormat(&out, "%9s  %s%s%s  step\n", "", lo,
                        std::string(gap, ' '), hi);
  return out;
}

}  // namespace lorad::client
