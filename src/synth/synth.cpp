// Synthetic models: shapes of real checkpoints, seeded random weights, valid tokenizers.
// Recipe and rationale: docs/synth.md.
#include "octet/synth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cctype>
#include <cstring>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_set>

#include <fmt/format.h>

#include "octet/gguf_writer.h"
#include "octet/threads.h"

namespace octet::synth {

namespace {

using gguf::Type;

// Hyperparameters from the models' HF config.json files; metadata keys follow llama.cpp's
// convert_hf_to_gguf.py for each architecture (see add_arch_metadata).
const std::vector<Shape> kShapes = {
    // name, arch, general.name, basename, size, L, E, H, Hkv, Dh, F, V, ctx, n_rot, rope, eps,
    // layer_norm, qkv_bias, tied, gated, vocab
    {"qwen2.5-0.5b", "qwen2", "Qwen2.5 0.5B", "Qwen2.5", "0.5B", 24, 896, 14, 2, 64, 4864, 151936,
     32768, 0, 1e6, 1e-6, false, true, true, true, VocabKind::kGpt2Qwen2},
    {"qwen1.5-1.8b", "qwen2", "Qwen1.5 1.8B", "Qwen1.5", "1.8B", 24, 2048, 16, 16, 128, 5504,
     151936, 32768, 0, 1e6, 1e-6, false, true, false, true, VocabKind::kGpt2Qwen2},
    {"gemma-2b", "gemma", "Gemma 2b", "gemma", "2B", 18, 2048, 8, 1, 256, 16384, 256000, 8192, 0,
     0, 1e-6, false, false, true, true, VocabKind::kSpmGemma},
    {"phi-2", "phi2", "Phi 2", "phi", "2.7B", 32, 2560, 32, 32, 80, 10240, 51200, 2048, 32, 0,
     1e-5, true, true, false, false, VocabKind::kGpt2Phi2},
    {"llama-2-7b", "llama", "Llama 2 7b Hf", "Llama-2", "7B", 32, 4096, 32, 32, 128, 11008, 32000,
     4096, 128, 10000, 1e-5, false, false, false, true, VocabKind::kSpmLlama},
};

// ---- randomness -----------------------------------------------------------------------------

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// splitmix64 as a stream: tiny state, so every row can have its own generator and rows can
// be produced in any order on any thread with identical results.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    s += 0x9e3779b97f4a7c15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }
  uint64_t below(uint64_t n) { return next() % n; }
  // Two N(0,1) samples per 64-bit draw (Box-Muller on two 24-bit uniforms; |z| <= 5.9).
  void normal2(float* z0, float* z1) {
    const uint64_t x = next();
    const float u1 = (static_cast<float>(x >> 40) + 0.5f) * 0x1p-24f;
    const float u2 = static_cast<float>((x >> 16) & 0xffffffu) * 0x1p-24f;
    const float r = std::sqrt(-2.0f * std::log(u1));
    const float a = 6.28318530718f * u2;
    *z0 = r * std::cos(a);
    *z1 = r * std::sin(a);
  }
  void normals(float* out, int64_t n) {
    int64_t i = 0;
    for (; i + 1 < n; i += 2) normal2(out + i, out + i + 1);
    if (i < n) {
      float spare;
      normal2(out + i, &spare);
    }
  }
};

// ---- tokenizers -----------------------------------------------------------------------------

enum TokType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xc0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    s += static_cast<char>(0xe0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;         // SPM only
  std::vector<std::string> merges;   // BPE only
};

// GPT-2 byte-level alphabet in GPT-2's token order: printable bytes map to themselves, the
// other 68 bytes to U+0100.. in byte order ("Ġ" is the space, "Ċ" the newline).
std::vector<std::string> gpt2_byte_tokens() {
  std::vector<int> direct;
  for (int b = 33; b <= 126; ++b) direct.push_back(b);
  for (int b = 161; b <= 172; ++b) direct.push_back(b);
  for (int b = 174; b <= 255; ++b) direct.push_back(b);
  std::vector<std::string> out;
  for (int b : direct) {
    std::string s;
    append_utf8(s, static_cast<uint32_t>(b));
    out.push_back(s);
  }
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (std::find(direct.begin(), direct.end(), b) != direct.end()) continue;
    std::string s;
    append_utf8(s, static_cast<uint32_t>(256 + n++));
    out.push_back(s);
  }
  return out;
}

// Grows a vocabulary to `target` pieces by concatenating an existing piece with one letter,
// so every piece is reachable by merges of earlier ones (the merge list is valid BPE) and the
// mean piece length stays word-like (it grows only like log n).
// `stems` are the pieces that may be extended (letters, the word-start marker, then every new
// piece), so pieces look like words rather than strings of control bytes.
void grow_pieces(std::vector<std::string>& pieces, std::unordered_set<std::string>& seen,
                 std::vector<std::string> stems, size_t target, const std::vector<std::string>& letters,
                 Rng& rng, std::vector<std::string>* merges) {
  while (pieces.size() < target) {
    const std::string a = stems[rng.below(stems.size())];
    const std::string& b = letters[rng.below(letters.size())];
    std::string s = a + b;
    if (!seen.insert(s).second) continue;
    if (merges) merges->push_back(a + " " + b);
    stems.push_back(s);
    pieces.push_back(std::move(s));
  }
}

Vocab make_gpt2_vocab(const Shape& sh) {
  Vocab v;
  Rng rng(fnv1a(sh.name));
  std::vector<std::string>& t = v.tokens;
  t = gpt2_byte_tokens();
  std::unordered_set<std::string> seen(t.begin(), t.end());
  std::vector<std::string> letters;
  for (char c = 'a'; c <= 'z'; ++c) letters.emplace_back(1, c);
  for (char c = 'A'; c <= 'Z'; ++c) letters.emplace_back(1, c);
  // Real vocabularies: Qwen 151643 BPE tokens then specials; GPT-2/CodeGen (phi-2) 50256
  // then <|endoftext|>.
  const bool qwen = sh.vocab == VocabKind::kGpt2Qwen2;
  const size_t n_bpe = qwen ? 151643 : 50256;
  std::vector<std::string> stems = letters;
  stems.emplace_back("\xc4\xa0");  // "Ġ": a word start (space)
  grow_pieces(t, seen, stems, n_bpe, letters, rng, &v.merges);
  v.types.assign(t.size(), kNormal);
  auto add = [&](std::string s, int32_t type) {
    t.push_back(std::move(s));
    v.types.push_back(type);
  };
  if (qwen) {
    add("<|endoftext|>", kControl);
    add("<|im_start|>", kControl);
    add("<|im_end|>", kControl);
    if (sh.n_ff == 4864) {  // Qwen2.5 adds vision/tool/FIM specials
      for (const char* s : {"<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
                            "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
                            "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"})
        add(s, kControl);
      add("<tool_call>", kUserDefined);
      add("</tool_call>", kUserDefined);
      for (const char* s : {"<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                            "<|repo_name|>", "<|file_sep|>"})
        add(s, kUserDefined);
    }
  } else {
    add("<|endoftext|>", kControl);
    // CodeGen's added whitespace runs (raw text, as the converter writes added tokens).
    for (int n = 31; n >= 2; --n) add(std::string(static_cast<size_t>(n), ' '), kUserDefined);
    for (int n = 9; n >= 2; --n) add(std::string(static_cast<size_t>(n), '\t'), kUserDefined);
  }
  // The converter pads to the config's vocab_size with unused "[PAD{id}]" tokens.
  while (static_cast<int64_t>(t.size()) < sh.n_vocab) add(fmt::format("[PAD{}]", t.size()), kUnused);
  return v;
}

Vocab make_spm_vocab(const Shape& sh) {
  Vocab v;
  Rng rng(fnv1a(sh.name));
  std::vector<std::string>& t = v.tokens;
  auto add = [&](std::string s, int32_t type) {
    t.push_back(std::move(s));
    v.types.push_back(type);
    v.scores.push_back(0.f);
  };
  if (sh.vocab == VocabKind::kSpmGemma) {
    add("<pad>", kControl);
    add("<eos>", kControl);
    add("<bos>", kControl);
    add("<unk>", kUnknown);
    add("<mask>", kUserDefined);
    add("[@BOS@]", kUserDefined);
    for (int i = 0; t.size() < 106; ++i) add(fmt::format("<unused{}>", i), kUserDefined);
    add("<start_of_turn>", kUserDefined);
    add("<end_of_turn>", kUserDefined);
  } else {
    add("<unk>", kUnknown);
    add("<s>", kControl);
    add("</s>", kControl);
  }
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), kByte);
  // Single-character pieces (SPM starts from characters; the rest falls back to bytes), then
  // concatenations, scored so that earlier (shorter) pieces merge first.
  std::vector<std::string> letters;
  for (char c = 'a'; c <= 'z'; ++c) letters.emplace_back(1, c);
  for (char c = 'A'; c <= 'Z'; ++c) letters.emplace_back(1, c);
  const size_t first = t.size();
  std::vector<std::string> chars = letters;
  for (const char* s : {"\xe2\x96\x81", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ".", ",", "'", "-",
                        "\xc3\xa9", "\xe4\xb8\xad"})  // "▁", digits, punctuation, "é", "中"
    chars.emplace_back(s);
  std::unordered_set<std::string> seen(t.begin(), t.end());
  for (auto& c : chars) {
    seen.insert(c);
    t.push_back(c);
  }
  std::vector<std::string> stems = letters;
  stems.emplace_back("\xe2\x96\x81");  // "▁": a word start
  grow_pieces(t, seen, stems, static_cast<size_t>(sh.n_vocab), letters, rng, nullptr);
  v.types.resize(t.size(), kNormal);
  v.scores.resize(t.size(), 0.f);
  for (size_t i = first; i < t.size(); ++i) v.scores[i] = -static_cast<float>(i - first);
  return v;
}

// ---- tensors --------------------------------------------------------------------------------

struct TensorPlan {
  enum Kind { kMatrix, kGain, kBias };
  std::string name;
  std::vector<int64_t> dims;  // ne0 (row length) first
  Type type;
  Kind kind;
  float sigma = 0;               // matrix/bias: std; gain: relative jitter
  float base = 1;                // gain: typical value
  std::vector<float> col_scale;  // matrix: per input channel factor (empty: 1)
  std::vector<std::pair<int64_t, float>> overrides;  // gain: outlier channel -> value
  uint64_t stream = 0;
};

void gen_row(const TensorPlan& p, int64_t row, float* out) {
  const int64_t n = p.dims[0];
  Rng rng(splitmix64(p.stream + static_cast<uint64_t>(row) * 0xd1b54a32d192ed03ull));
  rng.normals(out, n);
  switch (p.kind) {
    case TensorPlan::kMatrix:
      if (p.col_scale.empty()) {
        for (int64_t i = 0; i < n; ++i) out[i] *= p.sigma;
      } else {
        for (int64_t i = 0; i < n; ++i) out[i] *= p.sigma * p.col_scale[static_cast<size_t>(i)];
      }
      break;
    case TensorPlan::kBias:
      for (int64_t i = 0; i < n; ++i) out[i] *= p.sigma;
      break;
    case TensorPlan::kGain:
      for (int64_t i = 0; i < n; ++i) out[i] = p.base * (1.0f + p.sigma * out[i]);
      for (auto [c, g] : p.overrides) out[c] = g;
      break;
  }
}

struct Builder {
  const Shape& sh;
  const Options& o;
  int64_t n_layer;
  std::vector<int64_t> outliers;
  uint64_t seed_mix;
  std::vector<TensorPlan> plans;

  Type mat_type(bool is_output) const {
    // llama.cpp's quantize gives the LM head (or a tied embedding) Q6_K under Q4_0; octet's
    // writer has no Q6_K, and Q8_0 is what llama.cpp itself falls back to when rows do not
    // fit 256-blocks (Qwen2.5-0.5B), so the head is Q8_0.
    if (is_output && o.head_type) return *o.head_type;
    if (is_output && o.type == Type::Q4_0) return Type::Q8_0;
    return o.type;
  }
  Type vec_type() const { return Type::F32; }

  TensorPlan& add(std::string name, std::vector<int64_t> dims, Type type, TensorPlan::Kind kind) {
    TensorPlan p;
    p.stream = splitmix64(seed_mix ^ fnv1a(name));
    p.name = std::move(name);
    p.dims = std::move(dims);
    p.type = type;
    p.kind = kind;
    plans.push_back(std::move(p));
    return plans.back();
  }

  // Gains of a pre-norm: ~1 with 5% jitter, outlier channels 20..60 (fixed per layer/norm).
  std::vector<std::pair<int64_t, float>> outlier_gains(int64_t layer, int which) const {
    std::vector<std::pair<int64_t, float>> g;
    for (size_t j = 0; j < outliers.size(); ++j) {
      Rng r(splitmix64(seed_mix ^ (0x0a11e5ull + static_cast<uint64_t>(layer) * 1000003u +
                                   static_cast<uint64_t>(which) * 7919u + j)));
      g.emplace_back(outliers[j], static_cast<float>(20.0 + 40.0 * r.uniform()));
    }
    return g;
  }

  // Weights reading a normed input x (x_c ~ g_c * N(0,1)): outlier columns are scaled by
  // 1/sqrt(g_c), so each outlier channel still carries ~g_c times the weight of a normal one
  // (clipping it would hurt, as in real models), and sigma makes the outputs unit variance.
  void normed_input_scaling(const std::vector<std::pair<int64_t, float>>& gains, std::vector<float>* cs,
                            float* sigma) const {
    const int64_t E = sh.n_embd;
    cs->assign(static_cast<size_t>(E), 1.0f);
    double var = static_cast<double>(E - static_cast<int64_t>(gains.size()));
    for (auto [c, g] : gains) {
      (*cs)[static_cast<size_t>(c)] = 1.0f / std::sqrt(g);
      var += g;
    }
    *sigma = static_cast<float>(1.0 / std::sqrt(var));
  }

  void build() {
    const int64_t E = sh.n_embd, F = sh.n_ff, V = sh.n_vocab;
    const int64_t Q = sh.n_head * sh.head_dim, KV = sh.n_head_kv * sh.head_dim;
    const float inv_sqrt_e = 1.0f / std::sqrt(static_cast<float>(E));
    // Each layer adds two branches to the residual stream; 1/sqrt(2L) keeps its variance O(1).
    const float resid = 1.0f / std::sqrt(2.0f * static_cast<float>(n_layer));
    const Type wt = mat_type(false);

    add("token_embd.weight", {E, V}, sh.tied_output ? mat_type(true) : wt, TensorPlan::kMatrix).sigma = inv_sqrt_e;
    for (int64_t il = 0; il < n_layer; ++il) {
      auto blk = [&](const char* n, const char* suffix = "weight") { return fmt::format("blk.{}.{}.{}", il, n, suffix); };
      auto gain = [&](const std::string& name, int which) {
        TensorPlan& p = add(name, {E}, vec_type(), TensorPlan::kGain);
        p.sigma = 0.05f;
        p.overrides = outlier_gains(il, which);
        return p.overrides;
      };
      auto bias = [&](const char* n, int64_t dim, float sigma) {
        add(blk(n, "bias"), {dim}, vec_type(), TensorPlan::kBias).sigma = sigma;
      };
      auto matrix = [&](const char* n, int64_t in, int64_t out, float sigma, const std::vector<float>& cs) {
        TensorPlan& p = add(blk(n), {in, out}, wt, TensorPlan::kMatrix);
        p.sigma = sigma;
        p.col_scale = cs;
      };
      const std::vector<float> none;
      std::vector<float> cs;
      float s_in;

      const auto attn_gains = gain(blk("attn_norm"), 0);
      if (sh.layer_norm) bias("attn_norm", E, 0.02f);
      normed_input_scaling(attn_gains, &cs, &s_in);
      const float bias_sigma = sh.layer_norm ? 0.02f : 0.1f;
      matrix("attn_q", E, Q, s_in, cs);
      if (sh.qkv_bias) bias("attn_q", Q, bias_sigma);
      matrix("attn_k", E, KV, s_in, cs);
      if (sh.qkv_bias) bias("attn_k", KV, bias_sigma);
      matrix("attn_v", E, KV, s_in, cs);
      if (sh.qkv_bias) bias("attn_v", KV, bias_sigma);
      matrix("attn_output", Q, E, resid / std::sqrt(static_cast<float>(Q)), none);
      if (sh.layer_norm) bias("attn_output", E, 0.02f);

      if (!sh.layer_norm) {  // phi2 feeds attention and FFN from the same norm (parallel block)
        const auto ffn_gains = gain(blk("ffn_norm"), 1);
        normed_input_scaling(ffn_gains, &cs, &s_in);
      }
      if (sh.gated_ffn) matrix("ffn_gate", E, F, s_in, cs);
      matrix("ffn_up", E, F, s_in, cs);
      if (sh.layer_norm) bias("ffn_up", F, 0.02f);
      // GLU/GELU outputs have variance ~0.35-0.45 for unit inputs; compensate to ~1.
      matrix("ffn_down", F, E, 1.6f * resid / std::sqrt(static_cast<float>(F)), none);
      if (sh.layer_norm) bias("ffn_down", E, 0.02f);
    }
    {
      // Logits with std ~2: through the output gain for a tied head, else the head's sigma.
      TensorPlan& p = add("output_norm.weight", {E}, vec_type(), TensorPlan::kGain);
      p.sigma = 0.05f;
      p.base = sh.tied_output ? 2.0f : 1.0f;
    }
    if (sh.layer_norm) add("output_norm.bias", {E}, vec_type(), TensorPlan::kBias).sigma = 0.02f;
    if (!sh.tied_output) add("output.weight", {E, V}, mat_type(true), TensorPlan::kMatrix).sigma = 2.0f * inv_sqrt_e;
    if (sh.layer_norm) add("output.bias", {V}, vec_type(), TensorPlan::kBias).sigma = 0.02f;
  }
};

uint32_t file_type_id(Type t) {
  switch (t) {
    case Type::F32: return 0;   // LLAMA_FTYPE_ALL_F32
    case Type::F16: return 1;   // MOSTLY_F16
    case Type::Q4_0: return 2;  // MOSTLY_Q4_0
    default: return 7;          // MOSTLY_Q8_0
  }
}

const char* chatml_template =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

void add_metadata(gguf::Writer& w, const Shape& sh, const Options& o, int64_t n_layer,
                  const std::vector<int64_t>& outliers) {
  const std::string a = sh.arch;
  auto k = [&](const char* key) { return a + "." + key; };
  w.add_string("general.architecture", a);
  w.add_string("general.type", "model");
  w.add_string("general.name", sh.model_name);
  w.add_string("general.basename", sh.basename);
  w.add_string("general.size_label", sh.size_label);
  const auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  w.add_u32(k("context_length"), u32(sh.n_ctx));
  w.add_u32(k("embedding_length"), u32(sh.n_embd));
  w.add_u32(k("feed_forward_length"), u32(sh.n_ff));
  w.add_u32(k("block_count"), u32(n_layer));
  w.add_u32(k("attention.head_count"), u32(sh.n_head));
  w.add_u32(k("attention.head_count_kv"), u32(sh.n_head_kv));
  if (sh.layer_norm) {
    w.add_f32(k("attention.layer_norm_epsilon"), static_cast<float>(sh.norm_eps));
  } else {
    w.add_f32(k("attention.layer_norm_rms_epsilon"), static_cast<float>(sh.norm_eps));
  }
  if (sh.rope_base > 0) w.add_f32(k("rope.freq_base"), static_cast<float>(sh.rope_base));
  if (sh.n_rot > 0) w.add_u32(k("rope.dimension_count"), u32(sh.n_rot));
  if (a == "gemma") {
    w.add_u32(k("attention.key_length"), u32(sh.head_dim));
    w.add_u32(k("attention.value_length"), u32(sh.head_dim));
  }
  if (a == "llama") w.add_u32(k("vocab_size"), u32(sh.n_vocab));
  w.add_u32("general.file_type", file_type_id(o.type));

  const bool bpe = sh.vocab == VocabKind::kGpt2Qwen2 || sh.vocab == VocabKind::kGpt2Phi2;
  const Vocab v = bpe ? make_gpt2_vocab(sh) : make_spm_vocab(sh);
  w.add_string("tokenizer.ggml.model", bpe ? "gpt2" : "llama");
  w.add_string("tokenizer.ggml.pre", sh.vocab == VocabKind::kGpt2Qwen2 ? "qwen2"
                                     : sh.vocab == VocabKind::kGpt2Phi2 ? "phi-2"
                                                                         : "default");
  w.add_string_array("tokenizer.ggml.tokens", v.tokens);
  if (!bpe) w.add_array("tokenizer.ggml.scores", std::span<const float>(v.scores));
  w.add_array("tokenizer.ggml.token_type", std::span<const int32_t>(v.types));
  if (bpe) w.add_string_array("tokenizer.ggml.merges", v.merges);
  switch (sh.vocab) {
    case VocabKind::kGpt2Qwen2:
      w.add_u32("tokenizer.ggml.eos_token_id", 151643);
      w.add_u32("tokenizer.ggml.padding_token_id", 151643);
      w.add_u32("tokenizer.ggml.bos_token_id", 151643);
      w.add_bool("tokenizer.ggml.add_bos_token", false);
      w.add_string("tokenizer.chat_template", chatml_template);
      break;
    case VocabKind::kGpt2Phi2:
      w.add_bool("tokenizer.ggml.add_bos_token", false);
      w.add_u32("tokenizer.ggml.bos_token_id", 50256);
      w.add_u32("tokenizer.ggml.eos_token_id", 50256);
      w.add_u32("tokenizer.ggml.unknown_token_id", 50256);
      break;
    case VocabKind::kSpmLlama:
      w.add_u32("tokenizer.ggml.bos_token_id", 1);
      w.add_u32("tokenizer.ggml.eos_token_id", 2);
      w.add_u32("tokenizer.ggml.unknown_token_id", 0);
      w.add_bool("tokenizer.ggml.add_bos_token", true);
      w.add_bool("tokenizer.ggml.add_eos_token", false);
      break;
    case VocabKind::kSpmGemma:
      w.add_u32("tokenizer.ggml.bos_token_id", 2);
      w.add_u32("tokenizer.ggml.eos_token_id", 1);
      w.add_u32("tokenizer.ggml.unknown_token_id", 3);
      w.add_u32("tokenizer.ggml.padding_token_id", 0);
      w.add_bool("tokenizer.ggml.add_bos_token", true);
      w.add_bool("tokenizer.ggml.add_eos_token", false);
      w.add_u32("tokenizer.ggml.prefix_token_id", 67);
      w.add_u32("tokenizer.ggml.suffix_token_id", 69);
      w.add_u32("tokenizer.ggml.middle_token_id", 68);
      w.add_u32("tokenizer.ggml.eot_token_id", 107);
      w.add_bool("tokenizer.ggml.add_space_prefix", false);
      break;
  }
  if (o.type == Type::Q8_0 || o.type == Type::Q4_0) w.add_u32("general.quantization_version", 2);
  // Provenance (extra keys; loaders ignore them).
  w.add_string("octet.synth.shape", sh.name);
  w.add_u64("octet.synth.seed", o.seed);
  w.add_array("octet.synth.outlier_channels", std::span<const int64_t>(outliers));
}

std::string fmt_mib(uint64_t b) { return fmt::format("{:.0f} MiB", static_cast<double>(b) / (1 << 20)); }

}  // namespace

const std::vector<Shape>& shapes() { return kShapes; }

const Shape* find_shape(std::string_view name) {
  for (const auto& s : kShapes)
    if (name == s.name) return &s;
  return nullptr;
}

Expected<gguf::Type> parse_type(std::string_view s) {
  std::string l(s);
  for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "f32") return Type::F32;
  if (l == "f16") return Type::F16;
  if (l == "q8_0") return Type::Q8_0;
  if (l == "q4_0") return Type::Q4_0;
  return Status::Error("synth: unknown type '" + std::string(s) + "' (use f32, f16, q8_0 or q4_0)");
}

std::vector<int64_t> outlier_channels(const Shape& s, uint64_t seed, int n_outliers) {
  std::vector<int64_t> ch;
  Rng r(splitmix64(seed ^ 0x07115e5ull));
  const int64_t n = std::min<int64_t>(std::max(0, n_outliers), s.n_embd);
  while (static_cast<int64_t>(ch.size()) < n) {
    const auto c = static_cast<int64_t>(r.below(static_cast<uint64_t>(s.n_embd)));
    if (std::find(ch.begin(), ch.end(), c) == ch.end()) ch.push_back(c);
  }
  std::sort(ch.begin(), ch.end());
  return ch;
}

Expected<Summary> write_model(const Options& o, const std::string& path) {
  const Shape* sh = find_shape(o.shape);
  if (!sh) {
    std::string names;
    for (const auto& s : kShapes) names += (names.empty() ? "" : ", ") + std::string(s.name);
    return Status::Error("synth: unknown shape '" + o.shape + "' (known: " + names + ")");
  }
  for (Type t : {o.type, o.head_type.value_or(o.type)})
    if (t != Type::F32 && t != Type::F16 && t != Type::Q8_0 && t != Type::Q4_0)
      return Status::Error("synth: type must be f32, f16, q8_0 or q4_0");
  if (o.n_layer < 0 || o.n_layer > 1024) return Status::Error("synth: --layers must be in [1, 1024]");
  if (o.n_outliers < 0 || o.n_outliers > sh->n_embd / 4) return Status::Error("synth: bad outlier count");
  const auto t0 = std::chrono::steady_clock::now();

  Builder b{*sh, o, o.n_layer > 0 ? o.n_layer : sh->n_layer, outlier_channels(*sh, o.seed, o.n_outliers),
            splitmix64(o.seed), {}};
  b.build();

  gguf::Writer w;
  add_metadata(w, *sh, o, b.n_layer, b.outliers);

  uint64_t total = 0, params = 0;
  for (const auto& p : b.plans) {
    int64_t n = 1;
    for (int64_t d : p.dims) n *= d;
    params += static_cast<uint64_t>(n);
    total += gguf::row_bytes(p.type, n);
  }

  ThreadPool pool(o.threads);
  const bool tty = isatty(fileno(stderr)) != 0;
  std::atomic<uint64_t> done{0};
  size_t index = 0;
  int last_decile = -1;
  for (const auto& p : b.plans) {
    const size_t my_index = ++index;
    w.add_tensor_generated(p.name, p.type, p.dims, [&, pp = &p, my_index](uint8_t* dst, size_t nbytes) -> Status {
      const int64_t ne0 = pp->dims[0];
      const int64_t rows = static_cast<int64_t>(nbytes / gguf::row_bytes(pp->type, ne0));
      const size_t rb = gguf::row_bytes(pp->type, ne0);
      std::mutex err_mu;
      Status err;
      pool.parallel_for(rows, 8, [&](int64_t r0, int64_t r1, int) {
        std::vector<float> row(static_cast<size_t>(ne0));
        for (int64_t r = r0; r < r1; ++r) {
          gen_row(*pp, r, row.data());
          Status st = gguf::quantize(pp->type, row.data(), dst + static_cast<size_t>(r) * rb, ne0);
          if (!st.ok()) {
            std::lock_guard<std::mutex> lk(err_mu);
            if (err.ok()) err = st;
            return;
          }
        }
      });
      OCTET_RETURN_IF_ERROR(err);
      const uint64_t d = done += nbytes;
      if (o.progress) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const int pct = static_cast<int>(100.0 * static_cast<double>(d) / static_cast<double>(total));
        if (tty) {
          std::fprintf(stderr, "\rsynth: [%zu/%zu] %s / %s (%d%%) %.1f s   ", my_index, b.plans.size(),
                       fmt_mib(d).c_str(), fmt_mib(total).c_str(), pct, secs);
        } else if (pct / 10 != last_decile) {
          last_decile = pct / 10;
          std::fprintf(stderr, "synth: %d%% (%s / %s) %.1f s\n", pct, fmt_mib(d).c_str(), fmt_mib(total).c_str(),
                       secs);
        }
      }
      return Status::Ok();
    });
  }
  Status st = w.write(path);
  if (o.progress && tty) std::fprintf(stderr, "\n");
  OCTET_RETURN_IF_ERROR(st);

  Summary s;
  struct stat sb {};
  if (stat(path.c_str(), &sb) == 0) s.file_bytes = static_cast<uint64_t>(sb.st_size);
  s.params = params;
  s.n_tensors = b.plans.size();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.outliers = b.outliers;
  return s;
}

}  // namespace octet::synth
