#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>

#include "octet/memory.h"
#include "octet/runtime.h"
#include "runtime/weights_util.h"

namespace octet {

const char* compute_mode_name(ComputeMode m) {
  switch (m) {
    case ComputeMode::kFp32: return "fp32";
    case ComputeMode::kInt8: return "int8";
    case ComputeMode::kGguf: return "gguf";
  }
  return "?";
}

void Linear::forward_gated(const float* gu, int64_t ldgu, GatedAct act, int64_t m, float* y,
                           int64_t ldy, ThreadPool* pool, LinearScratch* scratch) const {
  const int64_t K = k();
  std::vector<float>& x = scratch->tmp;
  x.resize(static_cast<size_t>(m * K));
  for (int64_t r = 0; r < m; ++r) act(gu + r * ldgu, gu + r * ldgu + K, x.data() + r * K, K);
  forward(x.data(), m, y, ldy, pool, scratch);
}

void Linear::forward_ffn(const float*, int64_t, GatedAct, float*, int64_t, float*, int64_t,
                         ThreadPool*, LinearScratch*) const {
  // Callers check fuses_ffn(); reaching this is a programming error, not bad input.
  std::fprintf(stderr, "octet: Linear::forward_ffn on a linear that does not fuse its FFN\n");
  std::abort();
}

namespace {

Status to_float(const Model& m, const gguf::TensorInfo* t, std::vector<float>* out) {
  out->clear();
  if (!t) return Status::Ok();
  OCTET_ASSIGN_OR_RETURN(*out, m.file().to_float(*t));
  return Status::Ok();
}

}  // namespace

Status stack_rows(const Model& m, std::initializer_list<const gguf::TensorInfo*> ts,
                  std::vector<float>* out, int64_t* n_total, int64_t interleave,
                  ThreadPool* pool) {
  int64_t n = 0, k = -1;
  for (auto* t : ts) {
    if (k >= 0 && t->row_len() != k) return Status::Error("weights: fused rows differ in width");
    k = t->row_len();
    n += t->n_rows();
  }
  if (interleave > 0 && (ts.size() != 2 || ts.begin()[0]->n_rows() != ts.begin()[1]->n_rows() ||
                         ts.begin()[0]->n_rows() % interleave != 0))
    return Status::Error("weights: rows cannot be interleaved");
  out->resize(static_cast<size_t>(n * k));
  int64_t row = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const gguf::TensorInfo* t = ts.begin()[i];
    // Units of rows (one row, or one interleaved block) on the pool: dequantising reads the
    // mapping and writes disjoint rows. The first error wins.
    const int64_t per = interleave > 0 ? interleave : 1;
    OCTET_RETURN_IF_ERROR(parallel_try(pool, t->n_rows() / per, interleave > 0 ? 4 : 64,
                                       [&](int64_t u0, int64_t u1) -> Status {
      if (interleave == 0)
        return m.file().dequantize_rows(*t, u0, u1 - u0, out->data() + (row + u0) * k);
      for (int64_t u = u0; u < u1; ++u)
        OCTET_RETURN_IF_ERROR(m.file().dequantize_rows(
            *t, u * per, per, out->data() + (2 * u + static_cast<int64_t>(i)) * per * k));
      return Status::Ok();
    }));
    // The copy replaces the file's pages in memory (decode over the GGUF faults back what
    // it reads): otherwise the whole file stays resident next to the copies (docs/memory.md).
    if (m.file().is_mapped()) release_file_pages(t->data, static_cast<size_t>(t->nbytes));
    row += t->n_rows();
  }
  *n_total = n;
  return Status::Ok();
}

Status Weights::fill_small_tensors(const Model& m, std::vector<LayerWeights>* layers,
                                   std::vector<float>* out_norm) {
  const HParams& hp = m.hparams();
  layers->resize(hp.n_layer);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerTensors& T = m.layer(il);
    LayerWeights& L = (*layers)[il];
    OCTET_RETURN_IF_ERROR(to_float(m, T.attn_norm, &L.attn_norm));
    OCTET_RETURN_IF_ERROR(to_float(m, T.q_norm, &L.q_norm));
    OCTET_RETURN_IF_ERROR(to_float(m, T.k_norm, &L.k_norm));
    OCTET_RETURN_IF_ERROR(to_float(m, T.attn_post_norm, &L.attn_post_norm));
    OCTET_RETURN_IF_ERROR(to_float(m, T.ffn_norm, &L.ffn_norm));
    OCTET_RETURN_IF_ERROR(to_float(m, T.ffn_post_norm, &L.ffn_post_norm));
    L.bqkv.clear();
    if (T.bq || T.bk || T.bv) {
      L.bqkv.assign(static_cast<size_t>(hp.q_dim() + 2 * hp.kv_dim()), 0.f);
      std::vector<float> tmp;
      int64_t off = 0;
      for (auto [t, n] : {std::pair{T.bq, hp.q_dim()}, {T.bk, hp.kv_dim()}, {T.bv, hp.kv_dim()}}) {
        OCTET_RETURN_IF_ERROR(to_float(m, t, &tmp));
        if (!tmp.empty()) std::copy(tmp.begin(), tmp.end(), L.bqkv.begin() + off);
        off += n;
      }
    }
  }
  return to_float(m, m.output_norm(), out_norm);
}

Expected<std::shared_ptr<const Weights>> Weights::build_fp32(const Model& m, ThreadPool* pool) {
  const HParams& hp = m.hparams();
  std::vector<LayerWeights> layers;
  std::vector<float> out_norm;
  OCTET_RETURN_IF_ERROR(fill_small_tensors(m, &layers, &out_norm));
  std::vector<float> buf;
  int64_t n = 0;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerTensors& T = m.layer(il);
    LayerWeights& L = layers[il];
    OCTET_RETURN_IF_ERROR(stack_rows(m, {T.wq, T.wk, T.wv}, &buf, &n, 0, pool));
    L.wqkv = std::make_unique<LinearF32>(buf.data(), n, hp.n_embd);
    OCTET_RETURN_IF_ERROR(stack_rows(m, {T.wo}, &buf, &n, 0, pool));
    L.wo = std::make_unique<LinearF32>(buf.data(), n, hp.q_dim());
    OCTET_RETURN_IF_ERROR(stack_rows(m, {T.ffn_gate, T.ffn_up}, &buf, &n, 0, pool));
    L.w_gate_up = std::make_unique<LinearF32>(buf.data(), n, hp.n_embd);
    OCTET_RETURN_IF_ERROR(stack_rows(m, {T.ffn_down}, &buf, &n, 0, pool));
    L.w_down = std::make_unique<LinearF32>(buf.data(), n, hp.n_ff);
  }
  OCTET_RETURN_IF_ERROR(stack_rows(m, {m.output()}, &buf, &n, 0, pool));
  auto head = std::make_unique<LinearF32>(buf.data(), n, hp.n_embd);
  return std::shared_ptr<const Weights>(std::make_shared<Weights>(
      ComputeMode::kFp32, std::move(layers), std::move(head), std::move(out_norm)));
}

size_t Weights::bytes() const {
  size_t b = lm_head_->bytes() + out_norm_.size() * sizeof(float);
  for (const auto& L : layers_) {
    b += L.wqkv->bytes() + L.wo->bytes() + L.w_gate_up->bytes() + L.w_down->bytes();
    for (const auto* v : {&L.bqkv, &L.attn_norm, &L.q_norm, &L.k_norm, &L.attn_post_norm,
                          &L.ffn_norm, &L.ffn_post_norm, &L.dec_attn_norm, &L.dec_ffn_norm})
      b += v->size() * sizeof(float);
  }
  return b;
}

WeightBytes Weights::breakdown() const {
  WeightBytes b;
  lm_head_->account(&b);
  const bool head_mapped = b.gguf_mapped > 0;  // the head reads the file (int8 --head file)
  b.small += out_norm_.size() * sizeof(float);
  for (const auto& L : layers_) {
    for (const auto* l : {&L.wqkv, &L.wo, &L.w_gate_up, &L.w_down}) (*l)->account(&b);
    // In gguf mode the decode linears read the very same mapped tensors: count them once.
    if (mode_ != ComputeMode::kGguf)
      for (const auto* l : {&L.dec_wqkv, &L.dec_wo, &L.dec_gate_up, &L.dec_down})
        if (*l) (*l)->account(&b);
    for (const auto* v : {&L.bqkv, &L.attn_norm, &L.q_norm, &L.k_norm, &L.attn_post_norm,
                          &L.ffn_norm, &L.ffn_post_norm, &L.dec_attn_norm, &L.dec_ffn_norm})
      b.small += v->size() * sizeof(float);
  }
  // ...and so does a decode head over the tensor the head already reads in place.
  if (dec_lm_head_ && mode_ != ComputeMode::kGguf && !head_mapped) dec_lm_head_->account(&b);
  return b;
}

}  // namespace octet
