#include "kernels/ref/float_ref.h"
#include "octet/half.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace octet::kernels::ref {

float dot_f32(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(s);
}

void axpy_f32(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void add_f32(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void scale_f32(float* y, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= a;
}

void rmsnorm_f32(const float* x, const float* w, float* out, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * r * (w ? w[i] : 1.0f);
}

void softmax_f32(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::fmax(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

// silu and gelu are evaluated in double: they are the ground truth for the vectorised forms
// (1 + tanh(t) would lose all precision where tanh(t) ≈ -1, even in double).
void silu_mul_f32(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    gate[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void gelu_tanh_mul_f32(float* gate, const float* up, int64_t n) {
  constexpr double kSqrt2OverPi = 0.7978845608028654;
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    // 0.5·(1 + tanh(t)) written as 1/(1 + e^(-2t)): equal, but exact where tanh(t) → -1.
    const double t = kSqrt2OverPi * (g + 0.044715 * g * g * g);
    gate[i] = static_cast<float>(g / (1.0 + std::exp(-2.0 * t)) * up[i]);
  }
}

void rope_f32_table(float* x, int64_t n_rot, const float* cos, const float* sin, RopeMode mode) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const int64_t i0 = mode == RopeMode::kNormal ? 2 * i : i;
    const int64_t i1 = mode == RopeMode::kNormal ? 2 * i + 1 : i + half;
    const float a = x[i0], b = x[i1];
    x[i0] = a * cos[i] - b * sin[i];
    x[i1] = a * sin[i] + b * cos[i];
  }
}

}  // namespace octet::kernels::ref

namespace octet::kernels {

void gemm_f32_ref(const float* x, int64_t m, const float* w, int64_t n, int64_t k, float* y,
                  int64_t ldy) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) y[i * ldy + j] = ref::dot_f32(x + i * k, w + j * k, k);
}

void rope_table(int64_t pos, int64_t n_rot, float freq_base, float freq_scale, float* cos,
                float* sin) {
  // theta_i = pos * base^(-2i/n_rot), computed in double for a table that does not drift.
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double inv = std::pow(static_cast<double>(freq_base),
                                -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    const double th = static_cast<double>(pos) * inv * freq_scale;
    cos[i] = static_cast<float>(std::cos(th));
    sin[i] = static_cast<float>(std::sin(th));
  }
}

void rope_f32(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base,
              float freq_scale, RopeMode mode) {
  (void)head_dim;
  float c[512], s[512];
  const int64_t half = n_rot / 2 < 512 ? n_rot / 2 : 512;
  rope_table(pos, 2 * half, freq_base, freq_scale, c, s);
  rope_f32_table(x, 2 * half, c, s, mode);
}

}  // namespace octet::kernels

namespace octet::kernels {

void attention_f32_ref(const float* q, int64_t ldq, int64_t n_q, int64_t pos0,
                       const float* k_cache, const float* v_cache, const AttentionDims& d,
                       float* out, int64_t ldo) {
  const int64_t D = d.head_dim, group = d.n_head / d.n_head_kv;
  std::vector<double> s, o(static_cast<size_t>(D));
  for (int64_t i = 0; i < n_q; ++i) {
    const int64_t p = pos0 + i, jlo = d.window > 0 ? std::max<int64_t>(0, p - d.window + 1) : 0;
    for (int64_t h = 0; h < d.n_head; ++h) {
      const float* qh = q + i * ldq + h * D;
      const float* kh = k_cache + (h / group) * d.kv_head_stride;
      const float* vh = v_cache + (h / group) * d.kv_head_stride;
      s.assign(static_cast<size_t>(p + 1 - jlo), 0.0);
      double mx = -INFINITY;
      for (int64_t j = jlo; j <= p; ++j) {
        double acc = 0;
        for (int64_t t = 0; t < D; ++t) acc += static_cast<double>(qh[t]) * kh[j * D + t];
        acc *= d.scale;
        if (d.softcap > 0.f) acc = d.softcap * std::tanh(acc / d.softcap);
        s[j - jlo] = acc;
        mx = std::max(mx, acc);
      }
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      std::fill(o.begin(), o.end(), 0.0);
      for (int64_t j = jlo; j <= p; ++j)
        for (int64_t t = 0; t < D; ++t) o[t] += s[j - jlo] * vh[j * D + t];
      for (int64_t t = 0; t < D; ++t) out[i * ldo + h * D + t] = static_cast<float>(o[t] / sum);
    }
  }
}

void kv_load_row_ref(KvType t, const void* src, float scale, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = t == KvType::kF32   ? static_cast<const float*>(src)[i]
             : t == KvType::kF16 ? fp16_to_fp32(static_cast<const uint16_t*>(src)[i])
                                 : scale * static_cast<float>(static_cast<const int8_t*>(src)[i]);
}

void attention_ref(const float* q, int64_t ldq, int64_t n_q, int64_t pos0, const KvView& k,
                   const KvView& v, const AttentionDims& d, float* out, int64_t ldo) {
  const int64_t D = d.head_dim, P = pos0 + n_q;
  const int64_t lo = d.window > 0 ? std::max<int64_t>(0, pos0 - d.window + 1) : 0;
  // Dense float copy of the positions some query sees; the rest stay NaN (never read).
  std::vector<float> kd(static_cast<size_t>(d.n_head_kv * P * D), NAN), vd(kd.size(), NAN);
  for (const auto& [view, dst] : {std::pair{&k, &kd}, std::pair{&v, &vd}})
    for (int64_t h = 0; h < d.n_head_kv; ++h)
      for (int64_t p = lo; p < P; ++p) {
        const int64_t slot = view->ring > 0 ? p % view->ring : p;
        const int64_t e = h * view->head_stride + slot * D;
        const void* src = static_cast<const uint8_t*>(view->data) +
                          e * static_cast<int64_t>(kv_elem_bytes(view->type));
        kv_load_row_ref(view->type, src, view->scale ? view->scale[e / D] : 0.f, D,
                        dst->data() + (h * P + p) * D);
      }
  AttentionDims dd = d;
  dd.kv_head_stride = P * D;
  attention_f32_ref(q, ldq, n_q, pos0, kd.data(), vd.data(), dd, out, ldo);
}

}  // namespace octet::kernels
