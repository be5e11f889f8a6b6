#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace octet::unicode {
namespace {

struct Range {
  uint32_t first, last;
  Cat cat;
};
constexpr Range kRanges[] = {
#include "tokenizer/unicode_tables.inc"
};

// Byte -> code point of the GPT-2 mapping: printable Latin-1 bytes map to themselves, the
// rest to 256, 257, ... in byte order.
struct ByteMap {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> from_cp{};  // code points < 324 -> byte, or -1
  ByteMap() {
    from_cp.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = keep ? static_cast<uint32_t>(b) : next++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

Cat category(uint32_t cp) {
  const Range* end = kRanges + sizeof(kRanges) / sizeof(kRanges[0]);
  const Range* r =
      std::upper_bound(kRanges, end, cp, [](uint32_t c, const Range& x) { return c < x.first; });
  if (r == kRanges) return kNone;
  --r;
  return cp <= r->last ? r->cat : kNone;
}

bool is_whitespace(uint32_t cp) {
  // Unicode White_Space (as llama.cpp's pre-tokenizer uses it).
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

size_t valid_char_len(std::string_view s, size_t i, bool* incomplete) {
  *incomplete = false;
  const auto b0 = static_cast<uint8_t>(s[i]);
  size_t n;
  uint32_t min;
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) { n = 2; min = 0x80; }
  else if (b0 >= 0xE0 && b0 <= 0xEF) { n = 3; min = 0x800; }
  else if (b0 >= 0xF0 && b0 <= 0xF4) { n = 4; min = 0x10000; }
  else return 0;
  uint32_t cp = b0 & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) {
      *incomplete = true;  // a valid prefix so far; more bytes may complete it
      return 0;
    }
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
    // Reject overlong forms, surrogates and > U+10FFFF as early as the second byte allows.
    if (k == 1) {
      if (n == 3 && ((b0 == 0xE0 && b < 0xA0) || (b0 == 0xED && b > 0x9F))) return 0;
      if (n == 4 && ((b0 == 0xF0 && b < 0x90) || (b0 == 0xF4 && b > 0x8F))) return 0;
    }
  }
  if (cp < min) return 0;
  return n;
}

std::vector<uint32_t> decode_utf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    bool inc;
    const size_t n = valid_char_len(s, i, &inc);
    if (n == 0) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    const auto b0 = static_cast<uint8_t>(s[i]);
    uint32_t cp = n == 1 ? b0 : (b0 & (0x7F >> n));
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += n;
  }
  return out;
}

void append_utf8(uint32_t cp, std::string* out) {
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

std::string byte_encode(std::string_view bytes) {
  const ByteMap& m = byte_map();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(m.to_cp[static_cast<uint8_t>(c)], &out);
  return out;
}

std::string byte_decode(std::string_view text) {
  const ByteMap& m = byte_map();
  std::string out;
  for (uint32_t cp : decode_utf8(text)) {
    if (cp < m.from_cp.size() && m.from_cp[cp] >= 0)
      out.push_back(static_cast<char>(m.from_cp[cp]));
    else
      append_utf8(cp, &out);
  }
  return out;
}

namespace {

struct Cursor {
  const std::vector<uint32_t>& cps;
  static constexpr uint32_t kEnd = 0xFFFFFFFF;
  uint32_t at(size_t i) const { return i < cps.size() ? cps[i] : kEnd; }
  bool ws(size_t i) const { return i < cps.size() && is_whitespace(cps[i]); }
  bool letter(size_t i) const { return i < cps.size() && category(cps[i]) == kLetter; }
  bool number(size_t i) const { return i < cps.size() && category(cps[i]) == kNumber; }
  // [^\s\p{L}\p{N}]
  bool other(size_t i) const { return i < cps.size() && !ws(i) && !letter(i) && !number(i); }
  static uint32_t lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
  // Length of a contraction ('s 't 're 've 'm 'll 'd) at i, or 0.
  size_t contraction(size_t i, bool icase) const {
    if (at(i) != '\'') return 0;
    auto c = [&](size_t k) { return icase ? lower(at(k)) : at(k); };
    const uint32_t a = c(i + 1), b = c(i + 2);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  }
  // Whitespace tail: \s+(?!\S)|\s+ starting at i (a whitespace char).
  size_t ws_tail(size_t i) const {
    size_t j = i;
    while (ws(j)) ++j;
    if (j - i > 1 && j < cps.size()) return j - 1;  // leave one space for the next word
    return j;
  }
};

}  // namespace

std::vector<Span> split_gpt2(const std::vector<uint32_t>& cps) {
  Cursor c{cps};
  std::vector<Span> out;
  size_t i = 0;
  const size_t n = cps.size();
  while (i < n) {
    size_t e;
    const size_t k = c.contraction(i, false);
    const size_t s = (c.at(i) == ' ') ? i + 1 : i;  // optional leading space
    if (k) {
      e = i + k;
    } else if (c.letter(s)) {
      e = s;
      while (c.letter(e)) ++e;
    } else if (c.number(s)) {
      e = s;
      while (c.number(e)) ++e;
    } else if (c.other(s)) {
      e = s;
      while (c.other(e)) ++e;
    } else {
      e = c.ws_tail(i);
    }
    out.push_back({i, e});
    i = e;
  }
  return out;
}

std::vector<Span> split_llama3(const std::vector<uint32_t>& cps, int max_digits) {
  Cursor c{cps};
  std::vector<Span> out;
  size_t i = 0;
  const size_t n = cps.size();
  while (i < n) {
    size_t e = 0;
    const uint32_t ch = cps[i];
    if (size_t k = c.contraction(i, true)) {
      e = i + k;
    } else if (c.letter(i) || (ch != '\r' && ch != '\n' && !c.number(i) && c.letter(i + 1))) {
      // [^\r\n\p{L}\p{N}]?\p{L}+
      e = c.letter(i) ? i : i + 1;
      while (c.letter(e)) ++e;
    } else if (c.number(i)) {
      e = i;
      while (c.number(e) && static_cast<int>(e - i) < max_digits) ++e;
    } else if (c.other(i) || (ch == ' ' && c.other(i + 1))) {
      //  ?[^\s\p{L}\p{N}]+[\r\n]*
      e = c.other(i) ? i : i + 1;
      while (c.other(e)) ++e;
      while (c.at(e) == '\r' || c.at(e) == '\n') ++e;
    } else {
      // \s*[\r\n]+ : up to the last \r or \n of the whitespace run, if any.
      size_t j = i, last_nl = 0;
      while (c.ws(j)) {
        if (cps[j] == '\r' || cps[j] == '\n') last_nl = j + 1;
        ++j;
      }
      e = last_nl ? last_nl : c.ws_tail(i);
    }
    out.push_back({i, e});
    i = e;
  }
  return out;
}

}  // namespace octet::unicode
