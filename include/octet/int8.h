// W8A8 linear layers: int8 weights (symmetric, one scale per output channel), int8
// activations (symmetric, one static per-tensor scale from calibration, or a dynamic scale per
// row), int32 accumulation, float output. Values beyond the activation clip range are
// reported as outliers so that a float "shadow" path can add (x − clip(x))·W back
// (DESIGN.md idea 2).
//
// Typical use from a model (weights quantised once at load, a scratch buffer per worker):
//
//   auto lin = Int8Linear::from_float(w, n, k, bias).value();    // at load
//   Int8Activations scratch;                                       // per worker, reused
//   OutlierList out;
//   lin.forward(x, m, act_scale, y, ldy, pool, {.outliers = &out, .scratch = &scratch});
//   lin.add_outlier_products(out, y, ldy);   // or a float shadow with hot float rows
//
// Numerics (identical on every ISA; the tests check bit-exactness against the scalar
// reference):
//   weights      q_w[n,k] = clamp(rne(W[n,k] · (127 / max_k|W[n,k]|)), -127, 127),
//                s_w[n] = max_k|W[n,k]| / 127  (an all-zero row has s_w = 0, q_w = 0)
//   activations  t = x · (1/s) (float), q = rne(clamp(t, -127, 127)) (rne: round half to even;
//                NaN quantises to 127); an outlier is an entry with |t| > 127, reported with
//                residual = x − sign(x)·(127·s).
//   output       acc = Σ_k q_x[m,k]·q_w[n,k] (exact int32),
//                y[m,n] = fma(float(acc), s_x[m]·s_w[n], base), base = (accumulate ? y : 0) + bias[n]
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <vector>

#include "octet/aligned.h"
#include "octet/status.h"
#include "octet/threads.h"

namespace octet::gguf {
enum class Type : uint32_t;  // octet/gguf.h
}

namespace octet {

// Which int8 kernel family runs. kAuto picks the best the CPU has (cpu_features(), so
// OCTET_ISA=ref|avx2 caps it); naming one the CPU lacks is an error, not a silent fallback.
enum class Int8Isa { kAuto, kRef, kAvx2, kVnni };
const char* int8_isa_name(Int8Isa isa);
// kAuto resolved to a concrete ISA, or an error if the requested one is unavailable.
Expected<Int8Isa> int8_isa_resolve(Int8Isa want);

// Largest K supported: |Σ q_x·q_w| must fit int32 even in the u8-shifted VNNI form.
inline constexpr int64_t kInt8MaxK = int64_t{1} << 16;


// One outlier of the shadow path, as the kernel reads it.
struct ShadowEntry {
  // Float weights of input channel col, or null (the int8 weights' column, read in place).
  // Panel-major: output n of the channel is hot[(n / 16)·hot_stride + n % 16], hot_stride
  // being given with the call (all hot channels' 16 floats of panel p lie side by side, so the
  // part a block of outputs needs is one contiguous range).
  const float* hot;
  int32_t col;
  float residual;  // x − clip(x)
};

// ---- Weights: W [N, K] quantised per output channel and packed once for the GEMM kernels.
// Layout (shared by all kernels): panels of 16 output channels; inside a panel, for each group
// of 4 consecutive k, 16 lanes × 4 bytes (one 64-byte zmm: lane j holds w[n0+j, 4g..4g+3]).
// Panels are interleaved in column blocks of kInt8PanelsPerBlock (3 panels = 48 channels, the
// VNNI microkernel's width): block b holds, for each group g, its panels' 64-byte rows side by
// side, so the microkernel reads one contiguous stream (the last block may hold fewer panels).
// K is padded to a multiple of 4 and N to a multiple of 16 with zeros. Also holds the
// per-channel Σ_k q_w[n,k] that undoes VNNI's u8 shift of the activations.
inline constexpr int64_t kInt8PanelsPerBlock = 3;
class Int8Weights {
 public:
  Int8Weights() = default;
  // W row-major [N, K] with row stride ldw (0: K).
  // Rows are quantised in parallel on `pool` when given.
  static Expected<Int8Weights> quantize(const float* w, int64_t n, int64_t k, int64_t ldw = 0,
                                        ThreadPool* pool = nullptr);
  // Same, reading W in blocks of rows from `fill(row0, nrows, dst)` so a large matrix (an LM
  // head) never exists in float all at once.
  static Expected<Int8Weights> quantize_rows(
      int64_t n, int64_t k, const std::function<Status(int64_t, int64_t, float*)>& fill,
      ThreadPool* pool = nullptr);
  // Already-quantised weights q [N, K] (row-major) with scales [N]; q must be in [-127, 127].
  static Expected<Int8Weights> from_int8(const int8_t* q, const float* scales, int64_t n,
                                         int64_t k);

  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  float scale(int64_t n) const { return scales_[n]; }
  const float* scales() const { return scales_.data(); }  // N (padded to 16) entries
  int32_t column_sum(int64_t n) const { return colsum_[n]; }  // Σ_k q_w[n,k]
  int8_t at(int64_t n, int64_t k) const;                   // q_w[n,k]
  void row_int8(int64_t n, int8_t* out) const;              // q_w[n, 0..K)
  void dequant_row(int64_t n, float* out) const;            // s_w[n]·q_w[n, 0..K)
  void dequant_column(int64_t k, float* out) const;         // s_w[n]·q_w[n,k], n = 0..N
  // Same for whole panels [p0, p1): out[j] for n = 16·p0 + j, padding lanes 0 (vectorised:
  // one 64-byte load per 16 channels; the shadow path's cold columns).
  void dequant_column_panels(int64_t k, int64_t p0, int64_t p1, float* out) const;
  // The shadow path for activation rows [m0, m1) and output panels [p0, p1), row r's
  // outliers being e[row_begin[r] .. row_begin[r+1]) (exact formula: kernels/int8_kernels.h,
  // shadow_rows_ref): y[r, n] += Σ a·hot(n) + s_w[n]·Σ a·q_w[n, col]. The hot columns live in
  // [hot_base, hot_base + panels·hot_stride) (prefetched per block), see ShadowEntry.
  // y is the output's element (m0, 16·p0), row stride ldy (a GemmAfter's block).
  void shadow_rows(const ShadowEntry* e, const int32_t* row_begin, int64_t m0, int64_t m1,
                   int64_t p0, int64_t p1, const float* hot_base, int64_t hot_stride, float* y,
                   int64_t ldy) const;
  size_t bytes() const { return packed_.size() + 8 * scales_.size(); }

  // Kernel view (layout above).
  int64_t k4() const { return k4_; }            // K padded / 4
  int64_t panels() const { return panels_; }    // N padded / 16
  const int8_t* packed() const { return packed_.data(); }
  // Byte offset of q_w[n,k] in packed().
  int64_t packed_index(int64_t n, int64_t k) const;
  const int32_t* shift_correction() const { return corr_.data(); }  // 128·Σ_k q_w[n,k]

 private:
  static Int8Weights alloc(int64_t n, int64_t k);
  int64_t group_stride(int64_t n) const;  // bytes between q_w[n, 4g] and q_w[n, 4g + 4]
  void finish(ThreadPool* pool = nullptr);  // column sums
  Status quantize_row(const float* row, int64_t j);  // row j of W into scales_/packed_
  Status quantize_block(const float* w, int64_t ldw, int64_t r0, int64_t rows, ThreadPool* pool);
  int64_t n_ = 0, k_ = 0, k4_ = 0, panels_ = 0;
  detail::AlignedVector<int8_t> packed_;
  std::vector<float> scales_;
  std::vector<int32_t> colsum_, corr_;
};

// The shadow path of a linear with float columns for its outliers and no int8 weights (every
// entry hot; see Int8Weights::shadow_rows): y[r, n] += Σ a·hot(n) for n < N; y is the
// output's element (m0, 16·p0).
void shadow_rows_hot(int64_t n, const ShadowEntry* e, const int32_t* row_begin, int64_t m0,
                     int64_t m1, int64_t p0, int64_t p1, const float* hot_base,
                     int64_t hot_stride, float* y, int64_t ldy);

// One activation entry beyond the clip range: x[row, col] = clip + residual.
struct Outlier {
  // The empty default constructor leaves the fields uninitialised on purpose: the kernels
  // grow their lists with resize() and fill them in bulk, which would otherwise zero-fill
  // first (~0.3 % of a prefill).
  Outlier() {}  // NOLINT(modernize-use-equals-default): = default would zero in resize()
  Outlier(int32_t r, int32_t c, float x) : row(r), col(c), residual(x) {}
  int32_t row;
  int32_t col;
  float residual;  // x − sign(x)·127·s
};
// In row-major order (row, then col).
using OutlierList = std::vector<Outlier>;

// The shadow path as the W4A8 kernel takes it (gemm_q4): y[r, n] += residual·W[n, col] for
// each of row r's outliers, W[n, col] read from the file's block the kernel has just decoded
// for its own product (so the correction uses the file's exact weights, and the linear needs
// no other copy of them). Row r's outliers are e[row_begin[r] .. row_begin[r + 1]), each
// row's in ascending col.
struct Q4Outlier {
  int32_t col;
  float residual;  // x − clip(x)
};
struct Q4Shadow {
  const Q4Outlier* e = nullptr;
  const int32_t* row_begin = nullptr;  // indexed by the GEMM's row, [0, M]
};

// ---- Activations x [M, K] quantised for one ISA's kernels (rows of K padded to a multiple of
// 4, stored with the kernel's offset: +128 for VNNI's u8×s8 instruction, 0 otherwise).
// Layout: row-major rows of ld() bytes (row_block() == 0), or, for the VNNI kernel, blocks of
// row_block() = 8 rows packed the way its microkernel broadcasts them: for each group of 4 k,
// the 8 rows' 4 bytes side by side (32 bytes), so one pointer walks the whole row block.
// Reusable: re-quantising into the same object keeps its buffer (no allocation per chunk).
class Int8Activations {
 public:
  int64_t m() const { return m_; }
  int64_t k() const { return k_; }
  Int8Isa isa() const { return isa_; }
  float row_scale(int64_t row) const { return row_scale_[row]; }
  int8_t at(int64_t row, int64_t k) const {
    return static_cast<int8_t>(data_[index(row, k)] - offset_);
  }

  // Kernel view.
  int64_t ld() const { return ld_; }  // bytes per row (K padded to 4)
  int64_t row_block() const { return rb_; }
  int64_t index(int64_t row, int64_t k) const {  // byte offset of x[row, k] in data()
    return rb_ ? ((row / rb_) * ld_ + (k & ~int64_t{3})) * rb_ + (row % rb_) * 4 + (k & 3)
               : row * ld_ + k;
  }
  const uint8_t* data() const { return data_.data(); }
  const float* row_scales() const { return row_scale_.data(); }
  uint8_t offset() const { return offset_; }

 private:
  friend struct Int8ActivationsAccess;
  int64_t m_ = 0, k_ = 0, ld_ = 0, rb_ = 0;
  Int8Isa isa_ = Int8Isa::kRef;
  uint8_t offset_ = 0;
  detail::HugeVector<uint8_t> data_;
  std::vector<float> row_scale_;
};

// How a static scale s applies to each row. kTensor: every row s. kFitBelowClip: a row whose
// largest |x| is below the clip 127·s gets its own finer scale max|x|/127 (then no entry of
// it is an outlier); the other rows keep s and the clip, so the outliers are the same.
enum class RowScale { kTensor, kFitBelowClip };
// Static per-tensor scale s > 0 (x row stride ldx, 0: K). If outliers is not null it is
// cleared and filled with every entry whose |x/s| exceeds 127.
Status quantize_activations(const float* x, int64_t m, int64_t k, int64_t ldx, float scale,
                            Int8Activations* out, OutlierList* outliers = nullptr,
                            ThreadPool* pool = nullptr, Int8Isa isa = Int8Isa::kAuto,
                            RowScale rows = RowScale::kTensor);
// The same for rows made on the fly: row(r, buf) returns row r of x (k floats), written into
// buf (k floats, per thread) or anywhere else. A producer (an activation of two other rows)
// then feeds the quantiser straight from L1, and x never exists as a whole.
using ActRowFn = std::function<const float*(int64_t row, float* buf)>;
Status quantize_activations_rows(const ActRowFn& row, int64_t m, int64_t k, float scale,
                                 Int8Activations* out, OutlierList* outliers = nullptr,
                                 ThreadPool* pool = nullptr, Int8Isa isa = Int8Isa::kAuto,
                                 RowScale rows = RowScale::kTensor);
// Dynamic per-row scale s_m = max_k|x[m,k]| / 127 (no outliers by construction).
Status quantize_activations_dynamic(const float* x, int64_t m, int64_t k, int64_t ldx,
                                    Int8Activations* out, ThreadPool* pool = nullptr,
                                    Int8Isa isa = Int8Isa::kAuto);

// Static-scale quantisation piece by piece: segments of 16·j columns of one row or a group of
// rows (segment_rows), in any order
// and from any thread, as a producer finishes them (the gate/up GEMM's hook makes the down
// projection's input this way, while the gate/up output is still in cache). The bytes and
// each outlier equal quantize_activations' on whole rows.
class Int8SegmentQuantizer {
 public:
  // Shapes out for m × k (k a multiple of 16), every row scale `scale`.
  Status begin(int64_t m, int64_t k, float scale, Int8Activations* out,
               Int8Isa isa = Int8Isa::kAuto);
  // Columns [c0, c0 + n) of row r from x[0, n) (c0 and n multiples of 16); appends their
  // outliers to *outliers (if not null) in column order.
  void segment(const float* x, int64_t r, int64_t c0, int64_t n, OutlierList* outliers) const {
    segment_rows(x, 0, r, r + 1, c0, n, outliers);
  }
  // The same for rows [r0, r1), row r from x + (r − r0)·ldx: a whole row block (8 rows on
  // VNNI) goes through the kernel's block path. Outliers in row-major, column order.
  void segment_rows(const float* x, int64_t ldx, int64_t r0, int64_t r1, int64_t c0, int64_t n,
                    OutlierList* outliers) const;

 private:
  using QuantRows = void (*)(const float*, int64_t, int64_t, float, float, uint8_t*, int64_t,
                             int64_t, int64_t, OutlierList*);
  QuantRows quant_ = nullptr;
  Int8Activations* out_ = nullptr;
  float scale_ = 0, inv_ = 0;
};

// ---- GEMM on quantised operands, with the ISA the activations were quantised for.
// y [M, N] row stride ldy >= N; see the header comment for the exact formula. bias may be null.
// Splits N across the pool (M when N is too narrow to share).
// `after`, if set, runs on each finished block of output (rows [m0, m1), panels [p0, p1) of 16
// channels) by the thread that computed it, while the block is still in cache (the shadow
// path); blocks are disjoint and cover the output. With after_align > 1 every block's
// [p0, p1) starts and ends on a multiple of after_align panels (or at the last panel).
// The hook gets the block itself: t is its element (m0, 16·p0), row stride ldt — inside y, or,
// with y_transient, in a per-thread tile (y is then left unwritten wherever a tile served: the
// caller wants each block only in its hook, e.g. the gate/up output that the fused FFN turns
// into the down projection's input at once; the whole of y would otherwise go out to memory).
using GemmAfter =
    std::function<void(int64_t m0, int64_t m1, int64_t p0, int64_t p1, float* t, int64_t ldt)>;
Status gemm_int8(const Int8Activations& a, const Int8Weights& w, float* y, int64_t ldy,
                 const float* bias = nullptr, bool accumulate = false, ThreadPool* pool = nullptr,
                 const GemmAfter* after = nullptr, int64_t after_align = 1,
                 bool y_transient = false);
// Exact integer products y[m,n] = Σ_k q_x[m,k]·q_w[n,k] (tests, debugging).
Status gemm_int8_i32(const Int8Activations& a, const Int8Weights& w, int32_t* y, int64_t ldy,
                     ThreadPool* pool = nullptr);

// ---- W4A8 / W5A8: the file's 4- and 5-bit rows read in place times int8 activations
// (kernels/q4_gemm.h). On CPUs without AVX-512 VNNI the int8 GEMM multiplies in int16 (16
// products per multiply µop); 4-5 bit codes fit vpmaddubsw (32), so the file's own blocks run
// 1.1-1.5× faster than an int8 copy would (Q4_0, Q4_K fastest). Weights are the file's (per-
// block scales and K-quant minimums), activations those of the int8 path.
//
// True where gemm_q4 reads rows of this type of k weights: Q4_0 and Q5_0 (k a multiple of
// 32), Q4_K and Q5_K (of 256).
bool q4_gemm_reads(gguf::Type t, int64_t k);
class Q4Weights {
 public:
  // rows: N pointers to rows of k weights each of type `type` (q4_gemm_reads); the memory
  // they point to (the mapped file) must outlive this object.
  static Expected<Q4Weights> create(std::vector<const uint8_t*> rows, int64_t k, gguf::Type type);
  int64_t n() const { return static_cast<int64_t>(rows_.size()); }
  int64_t k() const { return k_; }
  gguf::Type type() const { return type_; }
  int64_t panels() const { return (n() + 15) / 16; }
  const uint8_t* const* rows() const { return rows_.data(); }
  // Per output channel: 128·Σ_b s_b·Σ_{k in b} c_k (the kernel's u8 offset, undone; s, c as
  // kernels/q4_gemm.h defines them per format).
  const float* column_offsets() const { return corr_.data(); }
  // What this object allocates (the rows are the file's pages).
  size_t bytes() const { return rows_.size() * sizeof(void*) + corr_.size() * sizeof(float); }

 private:
  std::vector<const uint8_t*> rows_;
  std::vector<float> corr_;
  int64_t k_ = 0;
  gguf::Type type_{};
};
// True where gemm_q4 is the faster prefill GEMM: the AVX2 kernel exists and the int8 GEMM
// runs without VNNI (there its vpdpbusd does 64 products per µop, and int8 stays ahead).
bool q4_gemm_preferred();
// y = row_scale·(W·q_x) (+ bias) (+ the shadow path's outliers, if given), then `after` per
// finished block as gemm_int8. Activations from a row-major quantiser (AVX2 or reference
// layout; VNNI's row blocks are refused).
Status gemm_q4(const Int8Activations& a, const Q4Weights& w, float* y, int64_t ldy,
               const float* bias = nullptr, ThreadPool* pool = nullptr,
               const GemmAfter* after = nullptr, int64_t after_align = 1,
               const Q4Shadow* shadow = nullptr);

// Shadow path helper: y[o.row, 0..n) += o.residual · wt_row(o.col)[0..n) for every outlier,
// where wt_row(k) returns the N weights of input channel k (a column of W, e.g. a hot
// float row of Wᵀ kept by the model).
void add_outlier_products(const OutlierList& outliers,
                          const std::function<const float*(int64_t)>& wt_row, int64_t n,
                          float* y, int64_t ldy);

// ---- A quantised linear layer y = x·Wᵀ + b, the unit a model holds per projection.
struct Int8ForwardOptions {
  OutlierList* outliers = nullptr;     // filled with the clipped entries (static scale only)
  Int8Activations* scratch = nullptr;  // reused quantisation buffer (else one per call)
  bool accumulate = false;             // y += x·Wᵀ (+ b) instead of y =
  int64_t ldx = 0;                     // x row stride (0: K)
  Int8Isa isa = Int8Isa::kAuto;
};

class Int8Linear {
 public:
  Int8Linear() = default;
  // W [N, K] row-major; bias [N] or null.
  static Expected<Int8Linear> from_float(const float* w, int64_t n, int64_t k,
                                         const float* bias = nullptr, ThreadPool* pool = nullptr);
  static Expected<Int8Linear> from_weights(Int8Weights w, std::vector<float> bias = {});

  int64_t n() const { return w_.n(); }
  int64_t k() const { return w_.k(); }
  const Int8Weights& weights() const { return w_; }
  const float* bias() const { return bias_.empty() ? nullptr : bias_.data(); }

  // x [M, K] quantised with the static per-tensor act_scale, then the int8 GEMM into y.
  Status forward(const float* x, int64_t m, float act_scale, float* y, int64_t ldy,
                 ThreadPool* pool, const Int8ForwardOptions& opt) const;
  Status forward(const float* x, int64_t m, float act_scale, float* y, int64_t ldy,
                 ThreadPool* pool = nullptr, OutlierList* outliers = nullptr) const {
    Int8ForwardOptions opt;
    opt.outliers = outliers;
    return forward(x, m, act_scale, y, ldy, pool, opt);
  }
  // Same with dynamic per-row activation scales (accuracy baseline; no outliers).
  Status forward_dynamic(const float* x, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
                         const Int8ForwardOptions& opt = {}) const;
  // Shadow correction with this layer's own dequantised weights (the "read on demand" case):
  // afterwards y equals the weight-only-quantised product with the outlier rows unclipped.
  void add_outlier_products(const OutlierList& outliers, float* y, int64_t ldy) const;

 private:
  Int8Weights w_;
  std::vector<float> bias_;
};

}  // namespace octet
