// Qwen2 family (Qwen1.5, Qwen2, Qwen2.5): Llama blocks plus Q/K/V biases, RoPE on halves
// (NEOX), large rope base.
#include "model/arch.h"

namespace octet::model {

Status finish_qwen2(const gguf::File& f, HParams* hp) {
  hp->rope_mode = kernels::RopeMode::kNeox;
  hp->act = Activation::kSilu;
  hp->layer_is_swa.assign(hp->n_layer, false);
  return Status::Ok();
}

}  // namespace octet::model
