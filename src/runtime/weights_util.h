#pragma once
#include <initializer_list>
#include <vector>

#include "octet/model.h"

namespace octet {
// Dequantises several [n_i, k] tensors into one [Σn_i, k] matrix (fused projections).
// Dequantises the tensors' rows one after the other into out (n_total rows). interleave > 0
// (two tensors of equal rows, a multiple of it): blocks of that many rows alternate instead
// (a0, b0, a1, b1, ...). Rows run on the pool when one is given.
Status stack_rows(const Model& m, std::initializer_list<const gguf::TensorInfo*> ts,
                  std::vector<float>* out, int64_t* n_total, int64_t interleave = 0,
                  ThreadPool* pool = nullptr);
}  // namespace octet
