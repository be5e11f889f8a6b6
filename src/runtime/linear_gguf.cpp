// LinearGguf and the Weights hook that builds the decode linears over the model's tensors.
#include "octet/linear_gguf.h"

#include <algorithm>
#include <fmt/format.h>

namespace octet {

Expected<std::unique_ptr<LinearGguf>> LinearGguf::create(
    std::initializer_list<const gguf::TensorInfo*> parts, qgemv::Isa isa) {
  if (!qgemv::isa_available(isa))
    return Status::Error(std::string("decode linear: CPU cannot run ") + qgemv::isa_name(isa));
  auto lin = std::unique_ptr<LinearGguf>(new LinearGguf());
  lin->isa_ = isa;
  lin->k_ = -1;
  for (const gguf::TensorInfo* t : parts) {
    if (!t) return Status::Error("decode linear: missing tensor");
    if (!qgemv::supported(t->type))
      return Status::Error(fmt::format("decode linear: {} has type {} (no decode kernel)", t->name,
                                       gguf::type_name(static_cast<uint32_t>(t->type))));
    if (t->dims.size() > 2 && t->n_elements() != t->ne(0) * t->ne(1))
      return Status::Error("decode linear: " + t->name + " is not a matrix");
    const gguf::TypeInfo* ti = gguf::type_info(static_cast<uint32_t>(t->type));
    const int64_t k = t->row_len(), n = t->n_rows();
    if (k <= 0 || n <= 0 || k % ti->block_size != 0)
      return Status::Error("decode linear: " + t->name + " has a bad shape");
    if (lin->k_ >= 0 && k != lin->k_)
      return Status::Error("decode linear: fused tensors differ in width");
    const size_t stride = gguf::row_bytes(t->type, k);
    if (!t->data || t->nbytes < stride * static_cast<uint64_t>(n))
      return Status::Error("decode linear: " + t->name + " data is short");
    lin->k_ = k;
    const int block = qgemv::act_block(t->type);
    lin->need32_ |= block == 32;
    lin->need256_ |= block == 256;
    lin->parts_.push_back({t->type, t->data, stride, lin->n_, n, block});
    lin->n_ += n;
    lin->bytes_ += stride * static_cast<size_t>(n);
  }
  if (lin->parts_.empty()) return Status::Error("decode linear: no tensors");
  return lin;
}

void LinearGguf::forward(const float* x, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
                         LinearScratch* scratch) const {
  for (int64_t i0 = 0; i0 < m; i0 += qgemv::kMaxRows) {
    const int64_t mr = std::min<int64_t>(qgemv::kMaxRows, m - i0);
    const float* xr = x + i0 * k_;
    float* yr = y + i0 * ldy;
    qgemv::Acts& a32 = scratch->dec_act32;
    qgemv::Acts& a256 = scratch->dec_act256;
    if (need32_) qgemv::quantize_acts(xr, mr, k_, 32, &a32);
    if (need256_) qgemv::quantize_acts(xr, mr, k_, 256, &a256);
    a32.m = mr;  // the float path reads m from here
    // One fork-join over the fused n; a thread's range may straddle parts.
    parallel_for(pool, n_, 16, [&](int64_t b, int64_t e, int) {
      for (const Part& p : parts_) {
        const int64_t lo = std::max(b, p.row0), hi = std::min(e, p.row0 + p.n);
        if (lo >= hi) continue;
        const qgemv::Acts* a = p.block == 256 ? &a256 : &a32;
        qgemv::gemv_rows(isa_, p.type, p.data, p.stride, k_, lo - p.row0, hi - p.row0, xr, a,
                         yr + p.row0, ldy);
      }
    });
  }
}

Expected<std::shared_ptr<const Weights>> Weights::build_gguf(const Model& m) {
  const HParams& hp = m.hparams();
  std::vector<LayerWeights> layers;
  std::vector<float> out_norm;
  OCTET_RETURN_IF_ERROR(fill_small_tensors(m, &layers, &out_norm));
  auto make = [](std::initializer_list<const gguf::TensorInfo*> ts,
                 std::unique_ptr<Linear>* out) -> Status {
    auto l = LinearGguf::create(ts);
    if (!l) return Status::Error("--mode gguf: " + l.error());
    *out = std::move(l).value();
    return Status::Ok();
  };
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerTensors& T = m.layer(il);
    LayerWeights& L = layers[static_cast<size_t>(il)];
    OCTET_RETURN_IF_ERROR(make({T.wq, T.wk, T.wv}, &L.wqkv));
    OCTET_RETURN_IF_ERROR(make({T.wo}, &L.wo));
    OCTET_RETURN_IF_ERROR(make({T.ffn_gate, T.ffn_up}, &L.w_gate_up));
    OCTET_RETURN_IF_ERROR(make({T.ffn_down}, &L.w_down));
  }
  std::unique_ptr<Linear> head;
  OCTET_RETURN_IF_ERROR(make({m.output()}, &head));
  auto w = std::make_shared<Weights>(ComputeMode::kGguf, std::move(layers), std::move(head),
                                     std::move(out_norm));
  // Decode steps read the same blocks: the decode linears are the same kind of object.
  OCTET_RETURN_IF_ERROR(w->attach_gguf_decode(m));
  return std::shared_ptr<const Weights>(std::move(w));
}

Status Weights::attach_gguf_decode(const Model& m) {
  const HParams& hp = m.hparams();
  std::vector<std::unique_ptr<Linear>> made;
  auto make = [&](std::initializer_list<const gguf::TensorInfo*> ts) -> Status {
    auto l = LinearGguf::create(ts);
    if (!l) return Status::Error(l.error());
    made.push_back(std::move(l).value());
    return Status::Ok();
  };
  // Build everything first: either the whole model gets decode linears or none does.
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerTensors& T = m.layer(il);
    OCTET_RETURN_IF_ERROR(make({T.wq, T.wk, T.wv}));
    OCTET_RETURN_IF_ERROR(make({T.wo}));
    OCTET_RETURN_IF_ERROR(make({T.ffn_gate, T.ffn_up}));
    OCTET_RETURN_IF_ERROR(make({T.ffn_down}));
  }
  OCTET_RETURN_IF_ERROR(make({m.output()}));
  size_t i = 0;
  for (auto& L : layers_) {
    L.dec_wqkv = std::move(made[i++]);
    L.dec_wo = std::move(made[i++]);
    L.dec_gate_up = std::move(made[i++]);
    L.dec_down = std::move(made[i++]);
  }
  dec_lm_head_ = std::move(made[i]);
  return Status::Ok();
}

size_t Weights::decode_bytes() const {
  if (!dec_lm_head_) return 0;
  size_t b = dec_lm_head_->bytes();
  for (const auto& L : layers_)
    b += L.dec_wqkv->bytes() + L.dec_wo->bytes() + L.dec_gate_up->bytes() + L.dec_down->bytes();
  return b;
}

}  // namespace octet
