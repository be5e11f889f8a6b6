// Int8 weights/activations (quantisation, packing), kernel dispatch and threading for the
// int8 GEMM, and Int8Linear. The kernels themselves are in kernels/{ref,x86}/int8_*.cpp.
#include "octet/int8.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <string>

#include "kernels/int8_kernels.h"
#include "kernels/q4_gemm.h"
#include "octet/cpu.h"
#include "octet/gguf.h"

namespace octet {

using kernels::int8::AView;
using kernels::int8::Epilogue;
using kernels::int8::Kernels;
using kernels::int8::WView;

namespace {

const Kernels& kernels_for(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::kVnni: return kernels::int8::kernels_vnni();
    case Int8Isa::kAvx2: return kernels::int8::kernels_avx2();
    default: return kernels::int8::kernels_ref();
  }
}

// The float-side kernels around the GEMM (weight quantisation at load, column dequantisation,
// the shadow path) for the widest vectors this CPU has; the GEMM's own ISA (Int8Isa) is
// chosen per call, these once.
struct SideKernels {
  int64_t (*row_check)(const float*, int64_t, float*);
  void (*row_quant)(const float*, int64_t, float, int8_t*, int64_t);
  void (*dequant_column)(const WView&, int64_t, int64_t, int64_t, float*);
  void (*shadow_rows)(const WView&, const ShadowEntry*, const int32_t*, int64_t, int64_t,
                      int64_t, int64_t, const float*, int64_t, float*, int64_t);
};

const SideKernels& side_kernels() {
  namespace k8 = kernels::int8;
  static const SideKernels k = [] {
    const CpuFeatures& f = cpu_features();
    if (f.has_avx512())
      return SideKernels{k8::weight_row_check_avx512, k8::weight_row_quant_avx512,
                         k8::dequant_column_avx512, k8::shadow_rows_avx512};
    if (f.avx2 && f.fma)
      return SideKernels{k8::weight_row_check_avx2, k8::weight_row_quant_avx2,
                         k8::dequant_column_avx2, k8::shadow_rows_avx2};
    return SideKernels{k8::weight_row_check_ref, k8::weight_row_quant_ref,
                       k8::dequant_column_ref, k8::shadow_rows_ref};
  }();
  return k;
}

std::string dims(int64_t m, int64_t k) {
  return "[" + std::to_string(m) + ", " + std::to_string(k) + "]";
}

// Below this many multiply-adds a pool wake-up costs more than it saves.
constexpr int64_t kMinParallelMacs = int64_t{1} << 21;
// Weight bytes per N chunk of the GEMM (see run_gemm): well inside a 2 MiB L2 beside the
// activations of a 256-row chunk.
constexpr int64_t kChunkWeightBytes = int64_t{384} << 10;
constexpr int64_t kHookMinPanels = 8;
constexpr int64_t kHookRows = 64;  // a multiple of every kernel's row block

}  // namespace

const char* int8_isa_name(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::kAuto: return "auto";
    case Int8Isa::kRef: return "ref";
    case Int8Isa::kAvx2: return "avx2";
    case Int8Isa::kVnni: return "avx512vnni";
  }
  return "?";
}

Expected<Int8Isa> int8_isa_resolve(Int8Isa want) {
  const CpuFeatures& f = cpu_features();
  const bool vnni = f.has_avx512() && f.avx512vnni, avx2 = f.avx2 && f.fma;
  switch (want) {
    case Int8Isa::kAuto: return vnni ? Int8Isa::kVnni : avx2 ? Int8Isa::kAvx2 : Int8Isa::kRef;
    case Int8Isa::kRef: return Int8Isa::kRef;
    case Int8Isa::kAvx2:
      if (avx2) return Int8Isa::kAvx2;
      break;
    case Int8Isa::kVnni:
      if (vnni) return Int8Isa::kVnni;
      break;
  }
  return Status::Error(std::string("int8: this CPU lacks ") + int8_isa_name(want) + " (has: " +
                       f.describe() + ")");
}

// ---------------------------------------------------------------------------- weights

Int8Weights Int8Weights::alloc(int64_t n, int64_t k) {
  Int8Weights w;
  w.n_ = n;
  w.k_ = k;
  w.k4_ = (k + 3) / 4;
  w.panels_ = (n + 15) / 16;
  w.packed_.assign(static_cast<size_t>(w.panels_ * w.k4_ * 64), 0);
  w.scales_.assign(static_cast<size_t>(w.panels_ * 16), 0.0f);
  return w;
}

int64_t Int8Weights::packed_index(int64_t n, int64_t k) const {
  const int64_t p = n / 16, first = p / kInt8PanelsPerBlock * kInt8PanelsPerBlock;
  const int64_t width = std::min(kInt8PanelsPerBlock, panels_ - first);  // panels in the block
  return first * k4_ * 64 + (k / 4) * width * 64 + (p - first) * 64 + (n % 16) * 4 + k % 4;
}


int64_t Int8Weights::group_stride(int64_t n) const {
  const int64_t p = n / 16, first = p / kInt8PanelsPerBlock * kInt8PanelsPerBlock;
  return std::min(kInt8PanelsPerBlock, panels_ - first) * 64;
}

void Int8Weights::finish(ThreadPool* pool) {
  colsum_.assign(static_cast<size_t>(panels_ * 16), 0);
  corr_.assign(colsum_.size(), 0);
  // Padding is zero, so summing whole 4-byte groups of each lane is exact. Each block of
  // panels lies in memory as its groups, each group's panels side by side (packed_index);
  // blocks are independent, so they run on the pool.
  const int64_t blocks = (panels_ + kInt8PanelsPerBlock - 1) / kInt8PanelsPerBlock;
  parallel_for(pool, blocks, 8, [&](int64_t b0, int64_t b1, int) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t first = b * kInt8PanelsPerBlock;
      const int64_t width = std::min(kInt8PanelsPerBlock, panels_ - first);
      const int8_t* src = packed_.data() + first * k4_ * 64;
      int32_t* const sum = colsum_.data() + first * 16;
      for (int64_t g = 0; g < k4_; ++g)
        for (int64_t l = 0; l < width * 16; ++l, src += 4) sum[l] += src[0] + src[1] + src[2] + src[3];
    }
  });
  for (size_t n = 0; n < colsum_.size(); ++n) corr_[n] = 128 * colsum_[n];
}

Status Int8Weights::quantize_row(const float* row, int64_t j) {
  const SideKernels& sk = side_kernels();
  float amax = 0;
  const int64_t bad = sk.row_check(row, k_, &amax);
  if (bad >= 0)
    return Status::Error("int8 weights: non-finite value at [" + std::to_string(j) + ", " +
                         std::to_string(bad) + "]");
  const float inv = amax > 0 ? 127.0f / amax : 0.0f;
  scales_[j] = amax / 127.0f;
  int8_t* dst = packed_.data() + packed_index(j, 0);
  sk.row_quant(row, k_, inv, dst, group_stride(j));
  return Status::Ok();
}

Status Int8Weights::quantize_block(const float* w, int64_t ldw, int64_t r0, int64_t rows,
                                   ThreadPool* pool) {
  // Rows are independent (disjoint bytes of the packed buffer); the first error wins.
  return parallel_try(pool, rows, 64, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) OCTET_RETURN_IF_ERROR(quantize_row(w + j * ldw, r0 + j));
    return Status::Ok();
  });
}

Expected<Int8Weights> Int8Weights::quantize(const float* w, int64_t n, int64_t k, int64_t ldw,
                                            ThreadPool* pool) {
  if (ldw == 0) ldw = k;
  if (n < 1 || k < 1 || k > kInt8MaxK || ldw < k || !w)
    return Status::Error("int8 weights: bad shape " + dims(n, k));
  Int8Weights out = alloc(n, k);
  OCTET_RETURN_IF_ERROR(out.quantize_block(w, ldw, 0, n, pool));
  out.finish(pool);
  return out;
}

Expected<Int8Weights> Int8Weights::quantize_rows(
    int64_t n, int64_t k, const std::function<Status(int64_t, int64_t, float*)>& fill,
    ThreadPool* pool) {
  if (n < 1 || k < 1 || k > kInt8MaxK) return Status::Error("int8 weights: bad shape " + dims(n, k));
  constexpr int64_t kRows = 1024;
  Int8Weights out = alloc(n, k);
  std::vector<float> buf(static_cast<size_t>(std::min(n, kRows) * k));
  for (int64_t r0 = 0; r0 < n; r0 += kRows) {
    const int64_t rows = std::min(kRows, n - r0);
    OCTET_RETURN_IF_ERROR(fill(r0, rows, buf.data()));
    OCTET_RETURN_IF_ERROR(out.quantize_block(buf.data(), k, r0, rows, pool));
  }
  out.finish(pool);
  return out;
}

Expected<Int8Weights> Int8Weights::from_int8(const int8_t* q, const float* scales, int64_t n,
                                             int64_t k) {
  if (n < 1 || k < 1 || k > kInt8MaxK || !q || !scales)
    return Status::Error("int8 weights: bad shape " + dims(n, k));
  Int8Weights out = alloc(n, k);
  for (int64_t j = 0; j < n; ++j) {
    out.scales_[j] = scales[j];
    for (int64_t i = 0; i < k; ++i) {
      const int8_t v = q[j * k + i];
      // -128 would break the symmetric range the AVX2 sign trick relies on.
      if (v == -128)
        return Status::Error("int8 weights: -128 at [" + std::to_string(j) + ", " +
                             std::to_string(i) + "] (must be in [-127, 127])");
      out.packed_[out.packed_index(j, i)] = v;
    }
  }
  out.finish();
  return out;
}

int8_t Int8Weights::at(int64_t n, int64_t k) const { return packed_[packed_index(n, k)]; }

void Int8Weights::row_int8(int64_t n, int8_t* out) const {
  for (int64_t k = 0; k < k_; ++k) out[k] = at(n, k);
}

void Int8Weights::dequant_row(int64_t n, float* out) const {
  for (int64_t k = 0; k < k_; ++k) out[k] = scales_[n] * at(n, k);
}

void Int8Weights::dequant_column_panels(int64_t k, int64_t p0, int64_t p1, float* out) const {
  const WView wv{packed(), n_, k4_, panels_, scales(), shift_correction()};
  side_kernels().dequant_column(wv, k, p0, p1, out);
}

void Int8Weights::shadow_rows(const ShadowEntry* e, const int32_t* row_begin, int64_t m0,
                              int64_t m1, int64_t p0, int64_t p1, const float* hot_base,
                              int64_t hot_stride, float* y, int64_t ldy) const {
  const WView wv{packed(), n_, k4_, panels_, scales(), shift_correction()};
  side_kernels().shadow_rows(wv, e, row_begin, m0, m1, p0, p1, hot_base, hot_stride, y, ldy);
}

void shadow_rows_hot(int64_t n, const ShadowEntry* e, const int32_t* row_begin, int64_t m0,
                     int64_t m1, int64_t p0, int64_t p1, const float* hot_base,
                     int64_t hot_stride, float* y, int64_t ldy) {
  const WView wv{nullptr, n, 0, (n + 15) / 16, nullptr, nullptr};
  side_kernels().shadow_rows(wv, e, row_begin, m0, m1, p0, p1, hot_base, hot_stride, y, ldy);
}

void Int8Weights::dequant_column(int64_t k, float* out) const {
  const int64_t full = n_ / 16;
  if (full > 0) dequant_column_panels(k, 0, full, out);
  if (full < panels_) {
    float tail[16];
    dequant_column_panels(k, full, panels_, tail);
    std::copy_n(tail, n_ - full * 16, out + full * 16);
  }
}

// ---------------------------------------------------------------------------- activations

struct Int8ActivationsAccess {
  // Shapes `a` for m × k on `isa`, reusing its buffer.
  static void reshape(Int8Activations* a, int64_t m, int64_t k, Int8Isa isa, uint8_t offset,
                      int64_t row_block) {
    a->m_ = m;
    a->k_ = k;
    a->ld_ = (k + 3) / 4 * 4;
    a->rb_ = row_block;
    a->isa_ = isa;
    a->offset_ = offset;
    const int64_t rows = row_block ? (m + row_block - 1) / row_block * row_block : m;
    // Grow only: one scratch object serves linears of different K in turn (the down
    // projection's input is ~2.7× the others), and shrinking then growing again zero-filled
    // the difference on every call (~1 % of a 1.8B prefill). Bytes past m·ld are never read.
    const size_t need = static_cast<size_t>(rows * a->ld_);
    if (a->data_.size() < need) a->data_.resize(need);
    a->row_scale_.resize(static_cast<size_t>(m));
  }
  static uint8_t* data(Int8Activations* a) { return a->data_.data(); }
  static float* row_scale(Int8Activations* a) { return a->row_scale_.data(); }
};

namespace {

Status check_x(const float* x, int64_t m, int64_t k, int64_t ldx, const Int8Activations* out) {
  if (m < 0 || k < 1 || k > kInt8MaxK || ldx < k || (m > 0 && !x) || !out)
    return Status::Error("int8 activations: bad shape " + dims(m, k));
  return Status::Ok();
}

// Rows per parallel task: enough work to pay for a pool wake-up.
// ~64 K values per piece, in whole 8-row blocks (the VNNI layout's row block: a range that
// starts inside a block takes the kernel's single-row path up to the next block) unless a
// piece is under 8 rows (K > 8192): then small batches still split across the threads.
int64_t row_grain(int64_t k) {
  const int64_t g = std::max<int64_t>(1, (int64_t{1} << 16) / k);
  return g < 8 ? g : (g + 7) / 8 * 8;
}

}  // namespace

namespace {

// Shapes out for m × k with every row scale `scale`; the kernels that fill it.
Expected<const Kernels*> shape_static(int64_t m, int64_t k, float scale, Int8Activations* out,
                                      Int8Isa isa) {
  if (!(scale > 0) || !std::isfinite(scale))
    return Status::Error("int8 activations: scale must be finite and > 0, got " +
                         std::to_string(scale));
  OCTET_ASSIGN_OR_RETURN(const Int8Isa use, int8_isa_resolve(isa));
  const Kernels& kr = kernels_for(use);
  Int8ActivationsAccess::reshape(out, m, k, use, kr.offset, kr.row_block);
  std::fill_n(Int8ActivationsAccess::row_scale(out), m, scale);
  return &kr;
}

// Rows [r0, r1) of x (row r at x + r·ldx) under RowScale::kFitBelowClip: runs of rows that
// reach the clip (or hold a NaN) go to the kernel together with the tensor's scale; a row
// below it alone with its own scale max|x|/127, whose inverse is nudged down until max|x|
// maps to at most 127 (so no entry counts as an outlier).
void quant_fit_rows(const Kernels& kr, const float* x, int64_t ldx, int64_t k, float scale,
                    float inv, uint8_t* dst, int64_t ld, float* row_scale, int64_t r0, int64_t r1,
                    OutlierList* ol) {
  thread_local std::vector<float> amax;
  amax.resize(static_cast<size_t>(r1 - r0));
  kr.absmax(x + r0 * ldx, ldx, k, 0, r1 - r0, amax.data());
  const float clip = 127.0f * scale;
  const auto fits = [&](int64_t r) { return amax[r - r0] < clip; };
  // Row r's own scale and inverse (the tensor's for an all-zero row).
  const auto own = [&](int64_t r, float* si) {
    const float a = amax[r - r0];
    float s = scale;
    *si = inv;
    if (a > 0) {
      s = a / 127.0f;
      *si = 1.0f / s;
      while (a * *si > 127.0f) *si = std::nextafter(*si, 0.0f);
      row_scale[r] = s;
    }
    return s;
  };
  const int64_t rb = kr.row_block;
  for (int64_t r = r0; r < r1;) {
    int64_t e = r;
    while (e < r1 && !fits(e)) ++e;
    if (e > r) {
      kr.quant(x + r * ldx, ldx, k, inv, scale, dst, ld, r, e, ol);
      r = e;
      continue;
    }
    // A whole row block of such rows in one call (each with its inverse), where the kernel
    // has one and the rows lie in memory (ldx 0: rows made one at a time).
    constexpr int64_t kMaxBlock = 16;
    if (kr.quant_fit && ldx != 0 && rb > 0 && rb <= kMaxBlock && r % rb == 0 && r + rb <= r1) {
      float si[kMaxBlock];
      int64_t n = 0;
      while (n < rb && fits(r + n)) ++n;
      if (n == rb) {
        for (int64_t i = 0; i < rb; ++i) own(r + i, &si[i]);
        kr.quant_fit(x + r * ldx, ldx, k, si, dst, ld, r);
        r += rb;
        continue;
      }
    }
    float si;
    const float s = own(r, &si);
    kr.quant(x + r * ldx, ldx, k, si, s, dst, ld, r, r + 1, ol);
    ++r;
  }
}

// Static-scale quantisation of m rows; `rows(b, e, quant_rows)` hands the kernel its rows
// (a view of x in place, or rows made one at a time).
template <class Rows>
Status quantize_static(int64_t m, int64_t k, float scale, Int8Activations* out,
                       OutlierList* outliers, ThreadPool* pool, Int8Isa isa, RowScale fit,
                       const Rows& rows) {
  OCTET_ASSIGN_OR_RETURN(const Kernels* kp, shape_static(m, k, scale, out, isa));
  const Kernels& kr = *kp;
  if (outliers) outliers->clear();
  const float inv = 1.0f / scale;
  uint8_t* dst = Int8ActivationsAccess::data(out);
  const int nt = pool ? pool->size() : 1;
  // Per-thread lists, concatenated in thread order = row order (ranges are contiguous); kept
  // per calling thread so their capacity is reused (no allocation per call). Each on its own
  // cache line: side by side, every push_back of one thread invalidated the other's vector
  // header (false sharing made the ffn_mid outliers cost ~70 cycles each).
  struct alignas(64) Lane {
    OutlierList v;
  };
  thread_local std::vector<Lane> tl_lists;
  std::vector<Lane>& local = tl_lists;  // workers must see the caller's instance
  if (outliers) {
    if (static_cast<int>(local.size()) < nt) local.resize(static_cast<size_t>(nt));
    for (int t = 0; t < nt; ++t) local[t].v.clear();
  }
  parallel_for(pool, m, row_grain(k), [&](int64_t b, int64_t e, int tid) {
    OutlierList* ol = outliers ? &local[tid].v : nullptr;
    rows(b, e, [&](const float* x, int64_t ldx, int64_t r0, int64_t r1) {
      if (fit == RowScale::kFitBelowClip)
        quant_fit_rows(kr, x, ldx, k, scale, inv, dst, out->ld(),
                       Int8ActivationsAccess::row_scale(out), r0, r1, ol);
      else
        kr.quant(x + r0 * ldx, ldx, k, inv, scale, dst, out->ld(), r0, r1, ol);
    });
  });
  if (outliers)
    for (int t = 0; t < nt; ++t)
      outliers->insert(outliers->end(), local[t].v.begin(), local[t].v.end());
  return Status::Ok();
}

}  // namespace

Status quantize_activations(const float* x, int64_t m, int64_t k, int64_t ldx, float scale,
                            Int8Activations* out, OutlierList* outliers, ThreadPool* pool,
                            Int8Isa isa, RowScale fit) {
  if (ldx == 0) ldx = k;
  OCTET_RETURN_IF_ERROR(check_x(x, m, k, ldx, out));
  return quantize_static(m, k, scale, out, outliers, pool, isa, fit,
                         [&](int64_t b, int64_t e, const auto& quant) { quant(x, ldx, b, e); });
}

Status quantize_activations_rows(const ActRowFn& row, int64_t m, int64_t k, float scale,
                                 Int8Activations* out, OutlierList* outliers, ThreadPool* pool,
                                 Int8Isa isa, RowScale fit) {
  if (m < 0 || k < 1 || k > kInt8MaxK || (m > 0 && !row) || !out)
    return Status::Error("int8 activations: bad shape " + dims(m, k));
  return quantize_static(m, k, scale, out, outliers, pool, isa, fit,
                         [&](int64_t b, int64_t e, const auto& quant) {
                           thread_local std::vector<float> buf;  // this worker's row
                           if (static_cast<int64_t>(buf.size()) < k) buf.resize(static_cast<size_t>(k));
                           // One row at a time (x is row r, stride 0).
                           for (int64_t r = b; r < e; ++r) quant(row(r, buf.data()), 0, r, r + 1);
                         });
}

Status quantize_activations_dynamic(const float* x, int64_t m, int64_t k, int64_t ldx,
                                    Int8Activations* out, ThreadPool* pool, Int8Isa isa) {
  if (ldx == 0) ldx = k;
  OCTET_RETURN_IF_ERROR(check_x(x, m, k, ldx, out));
  OCTET_ASSIGN_OR_RETURN(const Int8Isa use, int8_isa_resolve(isa));
  const Kernels& kr = kernels_for(use);
  Int8ActivationsAccess::reshape(out, m, k, use, kr.offset, kr.row_block);
  float* rs = Int8ActivationsAccess::row_scale(out);
  uint8_t* dst = Int8ActivationsAccess::data(out);
  parallel_for(pool, m, row_grain(k), [&](int64_t b, int64_t e, int) {
    kr.absmax(x, ldx, k, b, e, rs + b);
    for (int64_t r = b; r < e; ++r) {
      const float s = rs[r] / 127.0f;
      rs[r] = s;
      kr.quant(x + r * ldx, ldx, k, s > 0 ? 1.0f / s : 0.0f, s, dst, out->ld(), r, r + 1,
               nullptr);
    }
  });
  return Status::Ok();
}

Status Int8SegmentQuantizer::begin(int64_t m, int64_t k, float scale, Int8Activations* out,
                                   Int8Isa isa) {
  if (m < 0 || k < 16 || k % 16 != 0 || k > kInt8MaxK || !out)
    return Status::Error("int8 segment quantiser: bad shape " + dims(m, k));
  OCTET_ASSIGN_OR_RETURN(const Kernels* kr, shape_static(m, k, scale, out, isa));
  quant_ = kr->quant;
  out_ = out;
  scale_ = scale;
  inv_ = 1.0f / scale;
  return Status::Ok();
}

void Int8SegmentQuantizer::segment_rows(const float* x, int64_t ldx, int64_t r0, int64_t r1,
                                        int64_t c0, int64_t n, OutlierList* outliers) const {
  // The row kernels address row r of a layout from its `ld`: row blocks (VNNI) keep the
  // whole row's stride and start at the segment's first group; row-major layouts get the
  // segment as a matrix of n bytes per row (no padding to clear).
  uint8_t* dst = Int8ActivationsAccess::data(out_);
  const int64_t rb = out_->row_block();
  const int32_t col0 = static_cast<int32_t>(c0);
  if (rb) {
    const size_t first = outliers ? outliers->size() : 0;
    quant_(x, ldx, n, inv_, scale_, dst + c0 * rb, out_->ld(), r0, r1, outliers);
    if (outliers)
      for (size_t i = first; i < outliers->size(); ++i) (*outliers)[i].col += col0;
    return;
  }
  for (int64_t r = r0; r < r1; ++r) {
    const size_t first = outliers ? outliers->size() : 0;
    quant_(x + (r - r0) * ldx, 0, n, inv_, scale_, dst + r * out_->ld() + c0, n, 0, 1,
           outliers);
    if (outliers)  // the kernel numbered the row 0 and the segment's columns from 0
      for (size_t i = first; i < outliers->size(); ++i) {
        (*outliers)[i].row = static_cast<int32_t>(r);
        (*outliers)[i].col += col0;
      }
  }
}

// ---------------------------------------------------------------------------- GEMM

namespace {

// Where drive_gemm's kernel writes a block: into y as usual (tile null), or into the tile,
// whose element (0, 0) is the block's (m0, 16·p0), row stride ldt.
struct GemmTile {
  float* tile;
  int64_t ldt;
};

// Runs kernel(m0, m1, p0, p1, GemmTile) over rows [0, m) × panels [0, panels) on the pool
// (`grain`: panels per microkernel block, `mr`: rows per microkernel, `panel_bytes`: one
// panel's weights), then `after` on each finished block, in stripes of hook_rows (a multiple
// of the kernel's row chunk). y/ldy: the output (null: not float). With tile_ok set, a stripe
// for which tile_ok(m0, p0) holds is computed into a per-thread tile and handed to `after`
// there (see GemmAfter: y_transient).
template <class Kernel>
Status drive_gemm(int64_t m, int64_t panels, int64_t grain, int64_t mr, int64_t panel_bytes,
                  int64_t macs, ThreadPool* pool, const GemmAfter* after, int64_t after_align,
                  const Kernel& kernel, float* y, int64_t ldy,
                  const std::function<bool(int64_t, int64_t)>* tile_ok = nullptr,
                  int64_t hook_rows = kHookRows) {
  const int nt = pool ? pool->size() : 1;
  // N is cut into chunks of whole microkernel blocks holding ~kChunkWeightBytes of weights:
  // a chunk's weights stay in L2 while the kernel's row chunks re-read them, and with
  // several threads the chunks are handed out dynamically (an atomic counter), so a thread
  // that is slowed down (another process on its core, a slower tail) takes fewer of them.
  int64_t chunk = std::max<int64_t>(1, kChunkWeightBytes / (panel_bytes * grain)) * grain;
  if (nt > 1) {  // at least ~4 chunks per thread for the balance
    const int64_t per = (panels + 4 * nt - 1) / (4 * nt);
    chunk = std::min(chunk, std::max<int64_t>(grain, (per + grain - 1) / grain * grain));
  }
  // With a hook (the shadow path) every block also costs one visit of each of its rows'
  // outliers: blocks of ≥ 8 panels keep that overhead small (the 0.5B shape's down projection
  // would otherwise visit ffn_mid's ~50 outliers per token once per 3 panels).
  if (after && *after) {
    chunk = std::max<int64_t>(chunk, (kHookMinPanels + grain - 1) / grain * grain);
    const int64_t unit = std::lcm(grain, std::max<int64_t>(1, after_align));
    chunk = (chunk + unit - 1) / unit * unit;
  }
  const int64_t nchunks = (panels + chunk - 1) / chunk;
  // One block of output, then the caller's pass over it while it is still in cache.
  // With a hook, in row stripes of hook_rows: the kernel walks a block in such stripes anyway
  // (row chunks), and the hook then finds the stripe's output in L1/L2; after the whole block
  // the first stripes' lines had been evicted by the weights and activations (perf: a third
  // of the shadow kernel's samples on its first load of each output row).
  auto block = [&](int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    if (!after || !*after) return kernel(m0, m1, p0, p1, GemmTile{nullptr, 0});
    for (int64_t r = m0; r < m1; r += hook_rows) {
      const int64_t r1 = std::min(m1, r + hook_rows);
      if (tile_ok && (*tile_ok)(r, p0)) {
        // One stripe's block, reused stripe after stripe: it stays in L2, where y's lines
        // would have been written back to memory (20 MB per layer for a 0.5B-shape gate/up).
        thread_local detail::AlignedVector<float> buf;
        const int64_t ldt = 16 * (p1 - p0);
        if (static_cast<int64_t>(buf.size()) < (r1 - r) * ldt)
          buf.resize(static_cast<size_t>((r1 - r) * ldt));
        kernel(r, r1, p0, p1, GemmTile{buf.data(), ldt});
        (*after)(r, r1, p0, p1, buf.data(), ldt);
      } else {
        kernel(r, r1, p0, p1, GemmTile{nullptr, 0});
        (*after)(r, r1, p0, p1, y ? y + r * ldy + 16 * p0 : nullptr, ldy);
      }
    }
  };
  if (nt == 1 || macs < kMinParallelMacs) {
    for (int64_t c = 0; c < nchunks; ++c) block(0, m, c * chunk, std::min(panels, (c + 1) * chunk));
  } else if (panels >= 2 * nt * grain || m < mr * nt) {
    // Split N: each thread streams its own weight panels; all share the (smaller) activations.
    // The last nt chunks are handed out in row pieces (≥ hook_rows rows), so the thread that
    // finishes first does not wait up to a whole chunk for the other (the down projection's
    // chunks with their shadow corrections are ~1/7 of the call each).
    const int64_t tail = std::min<int64_t>(nchunks, nt);
    const int64_t pieces = std::clamp<int64_t>(m / hook_rows, 1, 4);
    const int64_t piece_rows = (m + pieces - 1) / pieces / hook_rows * hook_rows;
    const int64_t head = nchunks - tail, items = head + tail * pieces;
    std::atomic<int64_t> next{0};
    pool->parallel_for(nt, 1, [&](int64_t, int64_t, int) {
      for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < items;) {
        const int64_t c = i < head ? i : head + (i - head) / pieces;
        const int64_t p0 = c * chunk, p1 = std::min(panels, (c + 1) * chunk);
        if (i < head || pieces == 1) {
          block(0, m, p0, p1);
        } else {
          const int64_t k = (i - head) % pieces, r0 = k * piece_rows;
          const int64_t r1 = k == pieces - 1 ? m : (k + 1) * piece_rows;
          if (r0 < r1) block(r0, r1, p0, p1);
        }
      }
    });
  } else {
    pool->parallel_for(m, mr, [&](int64_t b, int64_t e, int) { block(b, e, 0, panels); });
  }
  return Status::Ok();
}

Status run_gemm(const Int8Activations& a, const Int8Weights& w, const Epilogue& ep,
                ThreadPool* pool, const GemmAfter* after = nullptr, int64_t after_align = 1,
                bool y_transient = false) {
  if (a.k() != w.k())
    return Status::Error("int8 gemm: activations K=" + std::to_string(a.k()) +
                         " but weights K=" + std::to_string(w.k()));
  if (ep.ldy < w.n() || (a.m() > 0 && !ep.y && !ep.y32))
    return Status::Error("int8 gemm: output row stride " + std::to_string(ep.ldy) + " < N=" +
                         std::to_string(w.n()));
  if (a.m() == 0) return Status::Ok();
  const Kernels& kr = kernels_for(a.isa());
  const AView av{a.data(), a.m(), a.ld(), a.row_scales()};
  const WView wv{w.packed(), w.n(), w.k4(), w.panels(), w.scales(), w.shift_correction()};
  // A tile takes a block whose rows start a row block and whose panels start a column block
  // of the packed weights: the kernel then runs on views rebased to (m0, p0).
  const std::function<bool(int64_t, int64_t)> tile_ok = [&](int64_t m0, int64_t p0) {
    return (a.row_block() == 0 || m0 % a.row_block() == 0) && p0 % kInt8PanelsPerBlock == 0;
  };
  return drive_gemm(
      a.m(), w.panels(), kr.panel_grain, kr.mr, 16 * w.k4() * 4, a.m() * w.n() * w.k(), pool,
      after, after_align,
      [&](int64_t m0, int64_t m1, int64_t p0, int64_t p1, GemmTile t) {
        if (!t.tile) return kr.gemm(av, wv, ep, m0, m1, p0, p1);
        const AView a2{av.data + m0 * av.ld, m1 - m0, av.ld,
                       av.row_scale ? av.row_scale + m0 : nullptr};
        const WView w2{wv.data + p0 * wv.k4 * 64, wv.n - 16 * p0, wv.k4, wv.panels - p0,
                       wv.scale + 16 * p0, wv.corr + 16 * p0};
        Epilogue e2 = ep;
        e2.y = t.tile;
        e2.ldy = t.ldt;
        e2.bias = ep.bias ? ep.bias + 16 * p0 : nullptr;
        kr.gemm(a2, w2, e2, 0, m1 - m0, 0, p1 - p0);
      },
      ep.y, ep.ldy, y_transient && ep.y && !ep.accumulate ? &tile_ok : nullptr);
}

}  // namespace

Status gemm_int8(const Int8Activations& a, const Int8Weights& w, float* y, int64_t ldy,
                 const float* bias, bool accumulate, ThreadPool* pool, const GemmAfter* after,
                 int64_t after_align, bool y_transient) {
  Epilogue ep;
  ep.y = y;
  ep.ldy = ldy;
  ep.bias = bias;
  ep.accumulate = accumulate;
  return run_gemm(a, w, ep, pool, after, after_align, y_transient);
}

Status gemm_int8_i32(const Int8Activations& a, const Int8Weights& w, int32_t* y, int64_t ldy,
                     ThreadPool* pool) {
  Epilogue ep;
  ep.y32 = y;
  ep.ldy = ldy;
  return run_gemm(a, w, ep, pool);
}

namespace {

std::optional<kernels::q4::Format> q4_format(gguf::Type t, int64_t k) {
  using kernels::q4::Format;
  Format f;
  switch (t) {
    case gguf::Type::Q4_0: f = Format::Q4_0; break;
    case gguf::Type::Q5_0: f = Format::Q5_0; break;
    case gguf::Type::Q4_K: f = Format::Q4_K; break;
    case gguf::Type::Q5_K: f = Format::Q5_K; break;
    default: return std::nullopt;
  }
  if (k <= 0 || k % kernels::q4::info(f).group != 0) return std::nullopt;
  return f;
}

}  // namespace

bool q4_gemm_reads(gguf::Type t, int64_t k) { return q4_format(t, k).has_value(); }

Expected<Q4Weights> Q4Weights::create(std::vector<const uint8_t*> rows, int64_t k,
                                      gguf::Type type) {
  const auto f = q4_format(type, k);
  if (!f)
    return Status::Error("q4 weights: " + gguf::type_name(static_cast<uint32_t>(type)) +
                         " rows of K=" + std::to_string(k) + " are not read by the W4A8 kernel");
  for (const uint8_t* r : rows)
    if (!r) return Status::Error("q4 weights: a null row");
  Q4Weights w;
  w.rows_ = std::move(rows);
  w.k_ = k;
  w.type_ = type;
  w.corr_.resize(w.rows_.size());
  kernels::q4::column_offsets({w.rows_.data(), w.n(), k, *f}, w.corr_.data());
  return w;
}

bool q4_gemm_preferred() {
  const CpuFeatures& f = cpu_features();
  return f.avx2 && f.fma && f.f16c && !f.avx512vnni;
}

Status gemm_q4(const Int8Activations& a, const Q4Weights& w, float* y, int64_t ldy,
               const float* bias, ThreadPool* pool, const GemmAfter* after, int64_t after_align,
               const Q4Shadow* shadow) {
  if (a.k() != w.k())
    return Status::Error("q4 gemm: activations K=" + std::to_string(a.k()) + " but weights K=" +
                         std::to_string(w.k()));
  if (ldy < w.n() || (a.m() > 0 && !y))
    return Status::Error("q4 gemm: output row stride " + std::to_string(ldy) + " < N=" +
                         std::to_string(w.n()));
  if (a.row_block() != 0) return Status::Error("q4 gemm: activations in VNNI row blocks");
  if (a.m() == 0) return Status::Ok();
  // The kernel's operand is u8 = q + 128: the stored bytes when the quantiser's offset is
  // 128, else flipped in a copy (one pass over M·K bytes, ~1/K of the GEMM's work).
  const uint8_t* data = a.data();
  thread_local detail::AlignedVector<uint8_t> flipped;
  if (a.offset() != 128) {
    if (a.offset() != 0) return Status::Error("q4 gemm: activation offset not 0 or 128");
    const size_t bytes = static_cast<size_t>(a.m() * a.ld());
    if (flipped.size() < bytes) flipped.resize(bytes);
    uint8_t* dst = flipped.data();
    const uint8_t* src = a.data();
    parallel_for(pool, a.m(), 64, [&](int64_t r0, int64_t r1, int) {
      // Eight bytes per step (rows are ld = K padded to 4 bytes: a 4-byte tail at most).
      const int64_t b = r0 * a.ld(), e = r1 * a.ld();
      int64_t i = b;
      for (; i + 8 <= e; i += 8) {
        uint64_t v;
        std::memcpy(&v, src + i, 8);
        v ^= 0x8080808080808080ull;
        std::memcpy(dst + i, &v, 8);
      }
      for (; i < e; ++i) dst[i] = src[i] ^ 0x80;
    });
    data = dst;
  }
  const kernels::q4::Acts acts{data, a.ld(), a.row_scales()};
  const kernels::q4::Q4View view{w.rows(), w.n(), w.k(), *q4_format(w.type(), w.k())};
  Epilogue ep;
  ep.y = y;
  ep.ldy = ldy;
  ep.bias = bias;
  const kernels::q4::GemmFn fn = kernels::q4::best_gemm();
  // Rows in multiples of the kernel's tile (3) and, with a hook, its 192-row chunk (each
  // chunk repacks a panel's blocks once); a panel is 16 of the file's rows.
  return drive_gemm(a.m(), w.panels(), 1, 3, 16 * kernels::q4::row_bytes(view.format, w.k()),
                    a.m() * w.n() * w.k(), pool,
                    after, after_align,
                    [&](int64_t m0, int64_t m1, int64_t p0, int64_t p1, GemmTile) {
                      fn(acts, view, w.column_offsets(), ep, m0, m1, p0, p1, shadow);
                    },
                    y, ldy, nullptr, 192);
}

void add_outlier_products(const OutlierList& outliers,
                          const std::function<const float*(int64_t)>& wt_row, int64_t n,
                          float* y, int64_t ldy) {
  for (const Outlier& o : outliers) {
    const float* w = wt_row(o.col);
    float* yr = y + o.row * ldy;
    for (int64_t j = 0; j < n; ++j) yr[j] += o.residual * w[j];
  }
}

// ---------------------------------------------------------------------------- Int8Linear

Expected<Int8Linear> Int8Linear::from_float(const float* w, int64_t n, int64_t k,
                                            const float* bias, ThreadPool* pool) {
  OCTET_ASSIGN_OR_RETURN(Int8Weights q, Int8Weights::quantize(w, n, k, 0, pool));
  return from_weights(std::move(q), bias ? std::vector<float>(bias, bias + n)
                                         : std::vector<float>());
}

Expected<Int8Linear> Int8Linear::from_weights(Int8Weights w, std::vector<float> bias) {
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != w.n())
    return Status::Error("int8 linear: bias has " + std::to_string(bias.size()) +
                         " entries for N=" + std::to_string(w.n()));
  Int8Linear l;
  l.w_ = std::move(w);
  l.bias_ = std::move(bias);
  return l;
}

Status Int8Linear::forward(const float* x, int64_t m, float act_scale, float* y, int64_t ldy,
                           ThreadPool* pool, const Int8ForwardOptions& opt) const {
  Int8Activations local;
  Int8Activations* a = opt.scratch ? opt.scratch : &local;
  OCTET_RETURN_IF_ERROR(
      quantize_activations(x, m, k(), opt.ldx, act_scale, a, opt.outliers, pool, opt.isa));
  return gemm_int8(*a, w_, y, ldy, bias(), opt.accumulate, pool);
}

Status Int8Linear::forward_dynamic(const float* x, int64_t m, float* y, int64_t ldy,
                                   ThreadPool* pool, const Int8ForwardOptions& opt) const {
  Int8Activations local;
  Int8Activations* a = opt.scratch ? opt.scratch : &local;
  OCTET_RETURN_IF_ERROR(quantize_activations_dynamic(x, m, k(), opt.ldx, a, pool, opt.isa));
  return gemm_int8(*a, w_, y, ldy, bias(), opt.accumulate, pool);
}

void Int8Linear::add_outlier_products(const OutlierList& outliers, float* y, int64_t ldy) const {
  // Group by input channel so each dequantised column is built once (hot channels repeat).
  std::vector<size_t> order(outliers.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t i, size_t j) { return outliers[i].col < outliers[j].col; });
  std::vector<float> col(static_cast<size_t>(n()));
  int64_t have = -1;
  for (size_t idx : order) {
    const Outlier& o = outliers[idx];
    if (o.col != have) {
      w_.dequant_column(o.col, col.data());
      have = o.col;
    }
    float* yr = y + o.row * ldy;
    for (int64_t j = 0; j < n(); ++j) yr[j] += o.residual * col[j];
  }
}

}  // namespace octet
