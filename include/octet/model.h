// A loaded model: hyperparameters, the architecture's tensor map (pointing into the mapped
// GGUF), and the tokenizer. Immutable after load; shared by many Sessions.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "octet/gguf.h"
#include "octet/kernels.h"
#include "octet/status.h"
#include "octet/tokenizer.h"

namespace octet {

enum class Arch { kLlama, kQwen2, kGemma3 };
const char* arch_name(Arch a);
enum class Activation { kSilu, kGeluTanh };

struct HParams {
  Arch arch = Arch::kLlama;
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0;
  int64_t head_dim = 0;   // per-head width of q/k/v
  int64_t n_ff = 0;
  int64_t n_ctx_train = 0;
  int64_t n_rot = 0;      // rotated dims per head
  float norm_eps = 1e-5f;
  float rope_base = 10000.f, rope_scale = 1.f;  // global layers
  float rope_base_swa = 10000.f;                // sliding-window layers
  kernels::RopeMode rope_mode = kernels::RopeMode::kNormal;
  int64_t sliding_window = 0;       // 0: none
  std::vector<bool> layer_is_swa;   // per layer
  bool qk_norm = false;             // RMSNorm of q and k per head (Gemma 3)
  bool post_norms = false;          // norms after attention and FFN outputs (Gemma 3)
  float embd_scale = 1.f;           // token embeddings are multiplied by this (Gemma: √n_embd)
  float attn_scale = 0.f;           // q·k scale
  Activation act = Activation::kSilu;

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
  std::string describe() const;
};

// Tensors of one block; nullptr where the architecture has none.
struct LayerTensors {
  const gguf::TensorInfo *attn_norm = nullptr, *wq = nullptr, *wk = nullptr, *wv = nullptr,
                         *wo = nullptr, *bq = nullptr, *bk = nullptr, *bv = nullptr,
                         *q_norm = nullptr, *k_norm = nullptr, *attn_post_norm = nullptr,
                         *ffn_norm = nullptr, *ffn_gate = nullptr, *ffn_up = nullptr,
                         *ffn_down = nullptr, *ffn_post_norm = nullptr;
};

class Model {
 public:
  static Expected<std::shared_ptr<const Model>> load(const std::string& path);

  const HParams& hparams() const { return hp_; }
  const gguf::File& file() const { return *file_; }
  const Tokenizer& tokenizer() const { return *tok_; }
  ChatTemplate chat_template() const { return chat_; }
  const std::string& name() const { return name_; }
  const LayerTensors& layer(int64_t i) const { return layers_[i]; }
  const gguf::TensorInfo* token_embd() const { return tok_embd_; }
  const gguf::TensorInfo* output_norm() const { return out_norm_; }
  // The LM head (token_embd when tied).
  const gguf::TensorInfo* output() const { return output_ ? output_ : tok_embd_; }
  bool tied_output() const { return output_ == nullptr; }
  // Writes the (scaled) embedding of token t into out[n_embd]. Reads the file (pread), not
  // its mapping: a prompt's scattered rows add nothing to RSS (gguf::File::read_rows).
  Status embed(Token t, float* out) const;

 private:
  Model() = default;
  Status bind(const std::string& path);
  std::unique_ptr<gguf::File> file_;
  std::unique_ptr<Tokenizer> tok_;
  HParams hp_;
  ChatTemplate chat_ = ChatTemplate::kNone;
  std::string name_;
  std::vector<LayerTensors> layers_;
  const gguf::TensorInfo *tok_embd_ = nullptr, *out_norm_ = nullptr, *output_ = nullptr;
};

}  // namespace octet
