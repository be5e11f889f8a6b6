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
  // Activations in groups of ≤ 4 rows (the kernels' width), each group quantised once.
  const int64_t groups = (m + qgemv::kMaxRows - 1) / qgemv::kMaxRows;
  std::vector<qgemv::Acts>& a32 = scratch->dec_act32;
  std::vector<qgemv::Acts>& a256 = scratch->dec_act256;
  if (static_cast<int64_t>(a32.size()) < groups) a32.resize(static_cast<size_t>(groups));
  if (static_cast<int64_t>(a256.size()) < groups) a256.resize(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t i0 = g * qgemv::kMaxRows, mr = std::min<int64_t>(qgemv::kMaxRows, m - i0);
    if (need32_) qgemv::quantize_acts(x + i0 * k_, mr, k_, 32, &a32[g]);
    if (need256_) qgemv::quantize_acts(x + i0 * k_, mr, k_, 256, &a256[g]);
    a32[g].m = mr;  // the float path reads m from here
  }
  // Many rows (ppl, all-position logits): a block of weight rows, small enough to stay in L2,
  // meets every group before the next block is read, so the matrix streams from memory once
  // rather than once per 4 rows. Each output is the same kernel call either way (bit-equal).
  // One group (decode) takes a thread's whole range per call, as the kernels' prefetch expects.
  size_t stride = 0;
  for (const Part& p : parts_) stride = std::max(stride, p.stride);
  const int64_t block =
      groups == 1 ? n_ : std::clamp<int64_t>(static_cast<int64_t>((256u << 10) / stride), 16, 4096);
  // One fork-join over the fused n; a thread's range may straddle parts.
  parallel_for(pool, n_, 16, [&](int64_t b, int64_t e, int) {
    for (int64_t n0 = b; n0 < e; n0 += block) {
      const int64_t n1 = std::min(e, n0 + block);
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t i0 = g * qgemv::kMaxRows;
        for (const Part& p : parts_) {
          const int64_t lo = std::max(n0, p.row0), hi = std::min(n1, p.row0 + p.n);
          if (lo >= hi) continue;
          const qgemv::Acts* a = p.block == 256 ? &a256[g] : &a32[g];
          qgemv::gemv_rows(isa_, p.type, p.data, p.stride, k_, lo - p.row0, hi - p.row0,
                           x + i0 * k_, a, y + i0 * ldy + p.row0, ldy);
        }
      }
    }
  });
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
