// Llama family (Llama 1/2/3, Mistral, TinyLlama, llama2.c exports): pre-norm blocks,
// SwiGLU FFN, RoPE on adjacent pairs (GGUF converters permute Q/K for it), no biases.
#include "model/arch.h"

namespace octet::model {

Status finish_llama(const gguf::File& f, HParams* hp) {
  hp->rope_mode = kernels::RopeMode::kNormal;
  hp->act = Activation::kSilu;
  hp->layer_is_swa.assign(hp->n_layer, false);
  return Status::Ok();
}

}  // namespace octet::model
