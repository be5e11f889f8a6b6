// Unicode helpers for the tokenizers: UTF-8 coding, general categories (generated tables),
// GPT-2 byte<->unicode mapping and the pre-tokenizer splitters (gpt2, llama3/qwen2 regexes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace octet::unicode {

enum Cat : uint8_t { kNone, kLetter, kNumber, kPunct, kSymbol, kMark, kSeparator, kOther };
Cat category(uint32_t cp);
// The whitespace set the pre-tokenizer regexes use for \s.
bool is_whitespace(uint32_t cp);

// Length of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes).
inline size_t utf8_len(uint8_t lead) {
  static const uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}
// Length of the valid, complete UTF-8 character at s[i]; 0 when invalid. *incomplete is set
// when the bytes so far are a valid prefix cut short by the end of s.
size_t valid_char_len(std::string_view s, size_t i, bool* incomplete);
// Code points; each invalid byte becomes U+FFFD.
std::vector<uint32_t> decode_utf8(std::string_view s);
void append_utf8(uint32_t cp, std::string* out);

// GPT-2 byte-level mapping: every byte to a printable code point (as UTF-8) and back.
std::string byte_encode(std::string_view bytes);
// Inverse; code points outside the mapping are copied through as UTF-8.
std::string byte_decode(std::string_view text);

// Pre-tokenizers: split text (code points) into words; returns [begin, end) code point spans.
struct Span { size_t b, e; };
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<Span> split_gpt2(const std::vector<uint32_t>& cps);
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}
//   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// max_digits 3: Llama 3; 1: Qwen2.
std::vector<Span> split_llama3(const std::vector<uint32_t>& cps, int max_digits);

}  // namespace octet::unicode
