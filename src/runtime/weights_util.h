#pragma once
#include <initializer_list>
#include <vector>

#include "octet/model.h"

namespace octet {
// Dequantises several [n_i, k] tensors into one [Σn_i, k] matrix (fused projections).
Status stack_rows(const Model& m, std::initializer_list<const gguf::TensorInfo*> ts,
                  std::vector<float>* out, int64_t* n_total);
}  // namespace octet
