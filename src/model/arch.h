// Architecture blueprints: each file (llama.cpp, qwen2.cpp, gemma3.cpp) turns GGUF metadata
// into HParams and says which optional tensors the architecture has.
#pragma once
#include <string_view>

#include "octet/gguf.h"
#include "octet/model.h"

namespace octet::model {

struct ArchSpec {
  const char* gguf_name;  // general.architecture
  Arch arch;
  // Architecture-specific hparams on top of the common ones (already filled).
  Status (*finish_hparams)(const gguf::File& f, HParams* hp);
  bool has_qkv_bias;  // required q/k/v biases
};

const ArchSpec* find_arch(std::string_view gguf_name);

// Common keys: {arch}.embedding_length, block_count, attention.head_count[_kv],
// feed_forward_length, context_length, attention.layer_norm_rms_epsilon, rope.*.
Status read_common_hparams(const gguf::File& f, const std::string& arch, HParams* hp);

Status finish_llama(const gguf::File& f, HParams* hp);
Status finish_qwen2(const gguf::File& f, HParams* hp);
Status finish_gemma3(const gguf::File& f, HParams* hp);

}  // namespace octet::model
