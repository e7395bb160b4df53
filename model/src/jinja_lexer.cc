#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jinja_internal.h"

namespace lorad::model::jinja {
namespace {

bool IsNameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool IsWs(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  explicit Lexer(absl::string_view src) : src_(src) {}

  absl::StatusOr<std::vector<Token>> Run() {
    bool strip_next = false;    // the previous tag ended with '-'
    bool line_starting = true;  // the previous match ended a line
    while (pos_ < src_.size()) {
      size_t tag = FindTagStart(pos_);
      std::string text(src_.substr(pos_, tag - pos_));
      const int text_line = line_, text_col = col_;
      if (strip_next) {
        size_t k = 0;
        while (k < text.size() && IsWs(text[k])) ++k;
        text.erase(0, k);
      }
      char kind = 0, sign = 0;
      if (tag < src_.size()) {
        kind = src_[tag + 1];
        if (tag + 2 < src_.size() &&
            (src_[tag + 2] == '-' || src_[tag + 2] == '+')) {
          sign = src_[tag + 2];
        }
        if (sign == '-') {
          size_t k = text.size();
          while (k > 0 && IsWs(text[k - 1])) --k;
          text.resize(k);
        } else if (sign != '+' && kind != '{') {
          // lstrip_blocks: spaces and tabs between a line start and the tag.
          size_t nl = text.rfind('\n');
          size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
          if (l_pos > 0 || line_starting) {
            bool blank = true;
            for (size_t k = l_pos; k < text.size(); ++k) {
              if (!IsWs(text[k])) blank = false;
            }
            if (blank) text.resize(l_pos);
          }
        }
      }
      if (!text.empty()) {
        tokens_.push_back(
            {Tok::kText, std::move(text), 0, 0, text_line, text_col});
      }
      Advance(tag);
      if (pos_ >= src_.size()) break;
      const int tag_line = line_, tag_col = col_;
      Advance(pos_ + 2 + (sign ? 1 : 0));
      char end_sign = 0;
      if (kind == '#') {
        size_t end = src_.find("#}", pos_);
        if (end == absl::string_view::npos) {
          return ErrorAt(tag_line, tag_col, "comment is not closed with #}");
        }
        if (end > pos_ && src_[end - 1] == '-') end_sign = '-';
        Advance(end + 2);
      } else {
        tokens_.push_back({kind == '%' ? Tok::kBlockBegin : Tok::kVarBegin,
                           kind == '%' ? "{%" : "{{", 0, 0, tag_line, tag_col});
        auto closed = LexInside(kind == '%' ? '%' : '}', &end_sign);
        if (!closed.ok()) return closed;
      }
      strip_next = end_sign == '-';
      line_starting = false;
      if (strip_next) {
        size_t k = pos_;
        while (k < src_.size() && IsWs(src_[k])) ++k;
        line_starting = k > pos_ && src_[k - 1] == '\n';
        Advance(k);
        strip_next = false;
      } else if (kind != '{' && end_sign != '+' && pos_ < src_.size() &&
                 src_[pos_] == '\n') {
        Advance(pos_ + 1);  // trim_blocks
        line_starting = true;
      }
    }
    tokens_.push_back({Tok::kEof, "", 0, 0, line_, col_});
    return std::move(tokens_);
  }

 private:
  size_t FindTagStart(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' &&
          (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return src_.size();
  }

  void Advance(size_t to) {
    for (; pos_ < to && pos_ < src_.size(); ++pos_) {
      if (src_[pos_] == '\n') {
        ++line_;
        col_ = 1;
      } else {
        ++col_;
      }
    }
  }

  bool At(absl::string_view s) const {
    return src_.substr(pos_, s.size()) == s;
  }

  // Tokens up to the closing "%}" / "}}" (`close` is its first char).
  absl::Status LexInside(char close, char* end_sign) {
    std::string brackets;  // open ( [ { inside the tag
    const std::string end = close == '%' ? "%}" : "}}";
    for (;;) {
      while (pos_ < src_.size() && IsWs(src_[pos_])) Advance(pos_ + 1);
      if (pos_ >= src_.size()) {
        return ErrorAt(line_, col_, absl::StrCat("missing ", end));
      }
      const int line = line_, col = col_;
      if (brackets.empty()) {
        for (char s : {'-', '+'}) {
          if (src_[pos_] == s && src_.substr(pos_ + 1, 2) == end) {
            *end_sign = s;
            Advance(pos_ + 3);
            tokens_.push_back({close == '%' ? Tok::kBlockEnd : Tok::kVarEnd,
                               end, 0, 0, line, col});
            return absl::OkStatus();
          }
        }
        if (At(end)) {
          Advance(pos_ + 2);
          tokens_.push_back({close == '%' ? Tok::kBlockEnd : Tok::kVarEnd, end,
                             0, 0, line, col});
          return absl::OkStatus();
        }
      }
      const char c = src_[pos_];
      if (IsNameStart(c)) {
        size_t e = pos_;
        while (e < src_.size() && IsNameChar(src_[e])) ++e;
        tokens_.push_back({Tok::kName, std::string(src_.substr(pos_, e - pos_)),
                           0, 0, line, col});
        Advance(e);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        LexNumber(line, col);
      } else if (c == '\'' || c == '"') {
        auto s = LexString(line, col);
        if (!s.ok()) return s;
      } else {
        static constexpr absl::string_view kOps[] = {
            "**", "//", "==", "!=", "<=", ">=", "<", ">", "+",
            "-",  "*",  "/",  "%",  "~",  "|",  ".", ",", ":",
            "(",  ")",  "[",  "]",  "{",  "}",  "="};
        absl::string_view op;
        for (absl::string_view o : kOps) {
          if (At(o)) {
            op = o;
            break;
          }
        }
        if (op.empty()) {
          return ErrorAt(
              line, col,
              absl::StrCat("unexpected character '", std::string(1, c), "'"));
        }
        if (op == "(" || op == "[" || op == "{") {
          brackets.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
        } else if (op == ")" || op == "]" || op == "}") {
          if (brackets.empty() || brackets.back() != op[0]) {
            return ErrorAt(line, col, absl::StrCat("unexpected '", op, "'"));
          }
          brackets.pop_back();
        }
        tokens_.push_back({Tok::kOp, std::string(op), 0, 0, line, col});
        Advance(pos_ + op.size());
      }
    }
  }

  void LexNumber(int line, int col) {
    size_t e = pos_;
    std::string digits;
    bool is_float = false;
    auto take_digits = [&] {
      while (e < src_.size() &&
             (std::isdigit(static_cast<unsigned char>(src_[e])) ||
              (src_[e] == '_' && e + 1 < src_.size() &&
               std::isdigit(static_cast<unsigned char>(src_[e + 1]))))) {
        if (src_[e] != '_') digits.push_back(src_[e]);
        ++e;
      }
    };
    take_digits();
    if (e + 1 < src_.size() && src_[e] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      is_float = true;
      digits.push_back('.');
      ++e;
      take_digits();
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t k = e + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() &&
          std::isdigit(static_cast<unsigned char>(src_[k]))) {
        is_float = true;
        digits.append(src_.data() + e, k - e);
        e = k;
        take_digits();
      }
    }
    Token t{is_float ? Tok::kFloat : Tok::kInt, digits, 0, 0, line, col};
    if (is_float) {
      t.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      // Saturates; values past int64 are refused by the parser.
      errno = 0;
      t.int_value = std::strtoll(digits.c_str(), nullptr, 10);
      if (errno == ERANGE) t.type = Tok::kFloat, t.text = "overflow";
    }
    tokens_.push_back(std::move(t));
    Advance(e);
  }

  // Python string-literal escapes, as jinja2 applies them.
  absl::Status LexString(int line, int col) {
    const char quote = src_[pos_];
    size_t i = pos_ + 1;
    std::string out;
    for (;;) {
      if (i >= src_.size()) {
        return ErrorAt(line, col, "string literal is not closed");
      }
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\' || i + 1 >= src_.size()) {
        out.push_back(c);
        ++i;
        continue;
      }
      const char n = src_[i + 1];
      i += 2;
      switch (n) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case '\n':
          break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          const int width = n == 'x' ? 2 : n == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (int k = 0; k < width; ++k) {
            int h = i + k < src_.size() ? HexValue(src_[i + k]) : -1;
            if (h < 0) {
              return ErrorAt(line, col,
                             absl::StrCat("truncated \\", std::string(1, n),
                                          " escape in a string literal"));
            }
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          if (cp > 0x10FFFF) {
            return ErrorAt(line, col, "escape past U+10FFFF in a string");
          }
          i += width;
          AppendUtf8(cp, &out);
          break;
        }
        default:
          if (n >= '0' && n <= '7') {
            uint32_t cp = static_cast<uint32_t>(n - '0');
            for (int k = 0;
                 k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7';
                 ++k, ++i) {
              cp = cp * 8 + static_cast<uint32_t>(src_[i] - '0');
            }
            AppendUtf8(cp, &out);
          } else {  // unknown escapes stay as written
            out.push_back('\\');
            out.push_back(n);
          }
      }
    }
    tokens_.push_back({Tok::kString, std::move(out), 0, 0, line, col});
    Advance(i + 1);
    return absl::OkStatus();
  }

  absl::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
  int col_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

absl::Status ErrorAt(int line, int col, absl::string_view msg) {
  return absl::InvalidArgumentError(
      absl::StrCat("line ", line, ", column ", col, ": ", msg));
}

absl::StatusOr<std::vector<Token>> Lex(absl::string_view source) {
  return Lexer(source).Run();
}

}  // namespace lorad::model::jinja
