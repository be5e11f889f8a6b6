// Decode GEMV over GGUF-native weights: y[m, n] = x[m, k] · W[n, k]ᵀ for small m (1..4),
// reading W in its stored block format straight from the mapped file. Decode is bound by
// weight bytes, so the smallest (native) encoding is the fastest one to stream.
//
// Activations are quantised per row into int8 blocks (32 for the 32-element formats, 256 with
// per-16 sums for the k-quants); block dots are exact int32 arithmetic, scales applied in fp32.
// F32/F16/BF16 weights take a plain float path (dequantise a row, fp32 dot, x unquantised).
#pragma once
#include <cstdint>
#include <vector>

#include "octet/gguf.h"
#include "octet/status.h"
#include "octet/threads.h"

namespace octet::qgemv {

enum class Isa { Ref, Avx2, Vnni };
const char* isa_name(Isa isa);
bool isa_available(Isa isa);  // honours OCTET_ISA caps through cpu_features()
Isa best_isa();

// Weight types with a decode kernel.
bool supported(gguf::Type t);
// Activation block size a type's kernel wants: 32, 256, or 0 (float path, x used as is).
int act_block(gguf::Type t);

// Quantised activations: m rows of k int8 values, one fp32 scale per block of `block`, and the
// int sum of every 16 values (offset and min terms of the formats).
struct Acts {
  int64_t m = 0, k = 0;
  int block = 0;
  std::vector<int8_t> q;      // [m][k]
  std::vector<float> d;       // [m][k / block]
  std::vector<int16_t> s16;   // [m][k / 16]
  const int8_t* row(int64_t i) const { return q.data() + i * k; }
  const float* scales(int64_t i) const { return d.data() + i * (k / block); }
  const int16_t* sums(int64_t i) const { return s16.data() + i * (k / 16); }
};
// Symmetric per-block int8: d = max|x| / 127, q = round(x / d). k must be a multiple of block
// (32 or 256). Isa::Ref runs the scalar definition; any other uses AVX2 where the CPU has it
// (the same bytes).
void quantize_acts(const float* x, int64_t m, int64_t k, int block, Acts* a, Isa isa = best_isa());

// Rows [n0, n1) of W (row r at w + r·row_stride) against all m rows: y[i·ldy + r].
// For the float path `x` (m × k, row-major) is read and `a` may be null; else `a` must hold
// x quantised with act_block(t). Callers validate types and shapes (see gemv()).
void gemv_rows(Isa isa, gguf::Type t, const uint8_t* w, size_t row_stride, int64_t k,
               int64_t n0, int64_t n1, const float* x, const Acts* a, float* y, int64_t ldy);

// Whole GEMV, split over n on the pool. `acts` is caller-owned scratch (reused, no allocation
// once warm). Errors on unsupported types, k not a whole number of blocks, or m outside 1..4.
Status gemv(gguf::Type t, const uint8_t* w, int64_t n, int64_t k, const float* x, int64_t m,
            float* y, int64_t ldy, ThreadPool* pool, Acts* acts, Isa isa = best_isa());

constexpr int64_t kMaxRows = 4;

}  // namespace octet::qgemv
