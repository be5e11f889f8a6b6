// Random-weight GGUF models in the exact shapes of real ones (tensor names and dims, metadata
// keys as llama.cpp's converters write them, a synthetic but valid tokenizer of the real vocab
// size). Weights are seeded Gaussians scaled so activations stay O(1) through the layers, with
// a few fixed "outlier" channels of the residual stream getting large norm gains, so the inputs
// of the linear layers have a handful of channels far larger than the rest, as in real LLMs.
// Tensors are generated row by row in parallel while the file is written (a 13 GB Llama-2-7B
// F16 never sits in memory). See docs/synth.md for the recipe.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "octet/gguf.h"
#include "octet/status.h"

namespace octet::synth {

enum class VocabKind {
  kGpt2Qwen2,  // byte-level BPE, pre "qwen2", ChatML specials
  kGpt2Phi2,   // byte-level BPE, pre "phi-2", <|endoftext|> + whitespace-run added tokens
  kSpmLlama,   // sentencepiece: <unk> <s> </s>, byte tokens, scored pieces
  kSpmGemma,   // sentencepiece, Gemma specials (<pad> <eos> <bos> <unk>, turn markers)
};

struct Shape {
  const char* name;        // --shape
  const char* arch;        // general.architecture
  const char* model_name;  // general.name
  const char* basename;    // general.basename
  const char* size_label;  // general.size_label
  int64_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
  int64_t n_rot;           // rope dims written to metadata (0: key not written)
  double rope_base;        // 0: key not written
  double norm_eps;
  bool layer_norm;         // LayerNorm with bias (phi2) instead of RMSNorm
  bool qkv_bias;           // q/k/v biases (qwen2; phi2 has biases everywhere)
  bool tied_output;        // no output.weight: token_embd doubles as the LM head
  bool gated_ffn;          // gate/up/down (SwiGLU/GeGLU) vs up/down (phi2)
  VocabKind vocab;
};

const std::vector<Shape>& shapes();
const Shape* find_shape(std::string_view name);

struct Options {
  std::string shape;
  gguf::Type type = gguf::Type::Q8_0;  // F32, F16, Q8_0 or Q4_0
  int64_t n_layer = 0;                 // 0: the shape's own layer count
  // The LM head's (or tied embedding's) type; unset: as llama.cpp's quantize would give it
  // (Q8_0 under Q4_0, else `type`).
  std::optional<gguf::Type> head_type;
  uint64_t seed = 1;
  int n_outliers = 6;                  // outlier channels of the residual stream (0: none)
  int threads = 0;                     // <= 0: hardware concurrency
  bool progress = true;                // progress line on stderr
};

// Parses f32/f16/q8_0/q4_0 (case-insensitive).
Expected<gguf::Type> parse_type(std::string_view s);

// The residual-stream channels that get outlier gains, sorted (same in every layer).
std::vector<int64_t> outlier_channels(const Shape& s, uint64_t seed, int n_outliers);

struct Summary {
  uint64_t file_bytes = 0;
  uint64_t params = 0;
  size_t n_tensors = 0;
  double seconds = 0;
  std::vector<int64_t> outliers;
};

// Writes the model to path (removed again on failure).
Expected<Summary> write_model(const Options& o, const std::string& path);

}  // namespace octet::synth
