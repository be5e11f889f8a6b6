// A Linear over GGUF tensors in their stored block format, read in place from the mapped file
// (zero copy): decode steps (m <= 4 rows), where streaming the fewest weight bytes wins, the
// int8 mode's LM head (any m: ppl's logits too) and `--mode gguf`.
// Several tensors of the same width k may be concatenated along n (fused q/k/v, gate/up);
// each part keeps its own type.
#pragma once
#include <initializer_list>
#include <memory>
#include <vector>

#include "octet/gguf.h"
#include "octet/qgemv.h"
#include "octet/runtime.h"

namespace octet {

class LinearGguf final : public Linear {
 public:
  // Errors when a part is missing, not 2-D, of a type without a decode kernel, or the widths
  // differ.
  static Expected<std::unique_ptr<LinearGguf>> create(
      std::initializer_list<const gguf::TensorInfo*> parts, qgemv::Isa isa = qgemv::best_isa());

  int64_t n() const override { return n_; }
  int64_t k() const override { return k_; }
  // Any m works: rows are taken 4 at a time against blocks of weight rows held in cache.
  void forward(const float* x, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
               LinearScratch* scratch) const override;
  // Bytes of the mapped tensors it reads (file pages, not heap).
  size_t bytes() const override { return bytes_; }
  void account(WeightBytes* b) const override { b->gguf_mapped += bytes_; }

 private:
  struct Part {
    gguf::Type type;
    const uint8_t* data;
    size_t stride;   // bytes per row
    int64_t row0, n; // rows [row0, row0 + n) of the fused output
    int block;       // activation block (0: float path)
  };
  std::vector<Part> parts_;
  int64_t n_ = 0, k_ = 0;
  size_t bytes_ = 0;
  qgemv::Isa isa_ = qgemv::Isa::Ref;
  bool need32_ = false, need256_ = false;
};

}  // namespace octet
