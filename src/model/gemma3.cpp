// Gemma 3 (text): interleaved sliding-window (local) and global attention layers — every
// 6th layer is global — with their own RoPE bases (10000 local, rope.freq_base global),
// per-head RMSNorm of q and k, norms after the attention and FFN outputs, embeddings scaled
// by √n_embd, GELU(tanh)-gated FFN, NEOX RoPE. Norm weights in GGUF already include the +1.
// Facts and sources: docs/architectures.md.
#include <cmath>

#include "model/arch.h"

namespace octet::model {

Status finish_gemma3(const gguf::File& f, HParams* hp) {
  hp->rope_mode = kernels::RopeMode::kNeox;
  hp->act = Activation::kGeluTanh;
  hp->qk_norm = true;
  hp->post_norms = true;
  hp->embd_scale = std::sqrt(static_cast<float>(hp->n_embd));
  hp->rope_base_swa = 10000.f;
  hp->sliding_window = f.get_int("gemma3.attention.sliding_window").value_or(0);
  if (hp->sliding_window < 0) return Status::Error("gemma3: negative sliding_window");
  constexpr int64_t kPattern = 6;  // llama.cpp: set_swa_pattern(6)
  hp->layer_is_swa.resize(hp->n_layer);
  for (int64_t il = 0; il < hp->n_layer; ++il)
    hp->layer_is_swa[il] = hp->sliding_window > 0 && (il % kPattern) < kPattern - 1;
  // Gemma 3 scales queries by query_pre_attn_scalar^-1/2 = head_dim^-1/2 (all but 27B).
  hp->attn_scale = 1.f / std::sqrt(static_cast<float>(hp->head_dim));
  return Status::Ok();
}

}  // namespace octet::model
