#include "octet/model.h"

#include <cmath>
#include <fmt/format.h>

#include "model/arch.h"

namespace octet {

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::kLlama: return "llama";
    case Arch::kQwen2: return "qwen2";
    case Arch::kGemma3: return "gemma3";
  }
  return "?";
}

std::string HParams::describe() const {
  return fmt::format(
      "{}: vocab {} embd {} layers {} heads {}/{} head_dim {} ff {} ctx {} rope {}{} "
      "base {}{} eps {:g}",
      arch_name(arch), n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff,
      n_ctx_train, rope_mode == kernels::RopeMode::kNeox ? "neox" : "normal",
      n_rot != head_dim ? fmt::format(" n_rot {}", n_rot) : "", rope_base,
      sliding_window ? fmt::format(" (swa window {} base {})", sliding_window, rope_base_swa)
                     : "",
      norm_eps);
}

namespace model {

namespace {
const ArchSpec kArchs[] = {
    {"llama", Arch::kLlama, finish_llama, false},
    {"mistral", Arch::kLlama, finish_llama, false},
    {"qwen2", Arch::kQwen2, finish_qwen2, true},
    {"gemma3", Arch::kGemma3, finish_gemma3, false},
};

// Sizes beyond these are not a model octet can run; they also keep the arithmetic below
// far from overflow on hostile files.
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxLayers = 4096;
}  // namespace

const ArchSpec* find_arch(std::string_view name) {
  for (const auto& a : kArchs)
    if (name == a.gguf_name) return &a;
  return nullptr;
}

Status read_common_hparams(const gguf::File& f, const std::string& arch, HParams* hp) {
  auto need = [&](const char* key, int64_t* out) -> Status {
    auto v = f.get_int(arch + "." + key);
    if (!v) return Status::Error(fmt::format("model: missing metadata '{}.{}'", arch, key));
    *out = *v;
    return Status::Ok();
  };
  OCTET_RETURN_IF_ERROR(need("embedding_length", &hp->n_embd));
  OCTET_RETURN_IF_ERROR(need("block_count", &hp->n_layer));
  OCTET_RETURN_IF_ERROR(need("attention.head_count", &hp->n_head));
  OCTET_RETURN_IF_ERROR(need("feed_forward_length", &hp->n_ff));
  hp->n_head_kv = f.get_int(arch + ".attention.head_count_kv").value_or(hp->n_head);
  hp->n_ctx_train = f.get_int(arch + ".context_length").value_or(2048);
  hp->norm_eps = static_cast<float>(
      f.get_float(arch + ".attention.layer_norm_rms_epsilon").value_or(1e-5));
  hp->rope_base = static_cast<float>(f.get_float(arch + ".rope.freq_base").value_or(10000.0));
  if (f.get_string(arch + ".rope.scaling.type").value_or("none") == "linear") {
    const double factor = f.get_float(arch + ".rope.scaling.factor").value_or(1.0);
    if (!(factor > 0)) return Status::Error("model: bad rope.scaling.factor");
    hp->rope_scale = static_cast<float>(1.0 / factor);
  }

  for (int64_t v : {hp->n_embd, hp->n_head, hp->n_ff, hp->n_head_kv})
    if (v <= 0 || v > kMaxDim)
      return Status::Error(fmt::format("model: hyperparameter out of range ({})", v));
  if (hp->n_layer <= 0 || hp->n_layer > kMaxLayers)
    return Status::Error(fmt::format("model: block_count {} out of range", hp->n_layer));
  if (hp->n_head % hp->n_head_kv != 0)
    return Status::Error(fmt::format("model: head_count {} not a multiple of head_count_kv {}",
                                     hp->n_head, hp->n_head_kv));
  hp->head_dim = f.get_int(arch + ".attention.key_length").value_or(hp->n_embd / hp->n_head);
  const int64_t vdim = f.get_int(arch + ".attention.value_length").value_or(hp->head_dim);
  if (hp->head_dim <= 0 || hp->head_dim > 4096 || vdim != hp->head_dim)
    return Status::Error(fmt::format("model: unsupported head dims k={} v={}", hp->head_dim, vdim));
  hp->n_rot = f.get_int(arch + ".rope.dimension_count").value_or(hp->head_dim);
  if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2)
    return Status::Error(fmt::format("model: bad rope.dimension_count {}", hp->n_rot));
  if (!(hp->norm_eps > 0) || !(hp->rope_base > 0))
    return Status::Error("model: bad norm epsilon or rope base");
  hp->attn_scale = 1.f / std::sqrt(static_cast<float>(hp->head_dim));
  return Status::Ok();
}

}  // namespace model

namespace {

// Checks a tensor exists with exactly the expected dims (ne0 first).
Status expect(const gguf::File& f, const std::string& name, std::vector<int64_t> dims,
              bool required, const gguf::TensorInfo** out) {
  const gguf::TensorInfo* t = f.tensor(name);
  *out = t;
  if (!t) {
    return required ? Status::Error(fmt::format("model: missing tensor '{}'", name))
                    : Status::Ok();
  }
  std::vector<int64_t> got = t->dims;
  while (got.size() > dims.size() && got.back() == 1) got.pop_back();
  if (got != dims)
    return Status::Error(fmt::format("model: tensor '{}' has dims [{}], expected [{}]", name,
                                     fmt::join(t->dims, ", "), fmt::join(dims, ", ")));
  const gguf::TypeInfo* ti = gguf::type_info(static_cast<uint32_t>(t->type));
  if (!ti || !ti->can_dequantize)
    return Status::Error(fmt::format("model: tensor '{}' has unsupported type {}", name,
                                     gguf::type_name(static_cast<uint32_t>(t->type))));
  return Status::Ok();
}

}  // namespace

Expected<std::shared_ptr<const Model>> Model::load(const std::string& path) {
  std::shared_ptr<Model> m(new Model());
  OCTET_RETURN_IF_ERROR(m->bind(path));
  return std::shared_ptr<const Model>(std::move(m));
}

Status Model::bind(const std::string& path) {
  OCTET_ASSIGN_OR_RETURN(file_, gguf::File::open(path));
  const gguf::File& f = *file_;
  const std::string arch = f.get_string("general.architecture").value_or("");
  const model::ArchSpec* spec = model::find_arch(arch);
  if (!spec)
    return Status::Error(fmt::format(
        "model: architecture '{}' is not supported (supported: llama, mistral, qwen2, gemma3)",
        arch.empty() ? "(missing)" : arch));
  hp_.arch = spec->arch;
  name_ = f.get_string("general.name").value_or(arch);
  OCTET_RETURN_IF_ERROR(model::read_common_hparams(f, arch, &hp_));
  OCTET_RETURN_IF_ERROR(spec->finish_hparams(f, &hp_));

  OCTET_ASSIGN_OR_RETURN(tok_, Tokenizer::from_gguf(f));
  hp_.n_vocab = tok_->n_vocab();
  chat_ = detect_chat_template(f);
  if (chat_ == ChatTemplate::kNone) chat_ = guess_chat_template(*tok_);  // no template text
  if (chat_ == ChatTemplate::kNone && hp_.arch == Arch::kGemma3) chat_ = ChatTemplate::kGemma;

  const int64_t E = hp_.n_embd, Q = hp_.q_dim(), KV = hp_.kv_dim(), F = hp_.n_ff;
  const int64_t D = hp_.head_dim, V = hp_.n_vocab;
  OCTET_RETURN_IF_ERROR(expect(f, "token_embd.weight", {E, V}, true, &tok_embd_));
  OCTET_RETURN_IF_ERROR(expect(f, "output_norm.weight", {E}, true, &out_norm_));
  OCTET_RETURN_IF_ERROR(expect(f, "output.weight", {E, V}, false, &output_));
  layers_.resize(hp_.n_layer);
  for (int64_t il = 0; il < hp_.n_layer; ++il) {
    LayerTensors& L = layers_[il];
    auto t = [&](const char* n, std::vector<int64_t> dims, bool req,
                 const gguf::TensorInfo** out) {
      return expect(f, fmt::format("blk.{}.{}.weight", il, n), std::move(dims), req, out);
    };
    auto b = [&](const char* n, int64_t dim, bool req, const gguf::TensorInfo** out) {
      return expect(f, fmt::format("blk.{}.{}.bias", il, n), {dim}, req, out);
    };
    const bool g3 = hp_.arch == Arch::kGemma3;
    OCTET_RETURN_IF_ERROR(t("attn_norm", {E}, true, &L.attn_norm));
    OCTET_RETURN_IF_ERROR(t("attn_q", {E, Q}, true, &L.wq));
    OCTET_RETURN_IF_ERROR(t("attn_k", {E, KV}, true, &L.wk));
    OCTET_RETURN_IF_ERROR(t("attn_v", {E, KV}, true, &L.wv));
    OCTET_RETURN_IF_ERROR(t("attn_output", {Q, E}, true, &L.wo));
    OCTET_RETURN_IF_ERROR(b("attn_q", Q, spec->has_qkv_bias, &L.bq));
    OCTET_RETURN_IF_ERROR(b("attn_k", KV, spec->has_qkv_bias, &L.bk));
    OCTET_RETURN_IF_ERROR(b("attn_v", KV, spec->has_qkv_bias, &L.bv));
    OCTET_RETURN_IF_ERROR(t("attn_q_norm", {D}, g3, &L.q_norm));
    OCTET_RETURN_IF_ERROR(t("attn_k_norm", {D}, g3, &L.k_norm));
    OCTET_RETURN_IF_ERROR(t("post_attention_norm", {E}, g3, &L.attn_post_norm));
    OCTET_RETURN_IF_ERROR(t("ffn_norm", {E}, true, &L.ffn_norm));
    OCTET_RETURN_IF_ERROR(t("ffn_gate", {E, F}, true, &L.ffn_gate));
    OCTET_RETURN_IF_ERROR(t("ffn_up", {E, F}, true, &L.ffn_up));
    OCTET_RETURN_IF_ERROR(t("ffn_down", {F, E}, true, &L.ffn_down));
    OCTET_RETURN_IF_ERROR(t("post_ffw_norm", {E}, g3, &L.ffn_post_norm));
  }
  return Status::Ok();
}

Status Model::embed(Token t, float* out) const {
  if (t < 0 || t >= hp_.n_vocab)
    return Status::Error(fmt::format("model: token id {} out of range [0, {})", t, hp_.n_vocab));
  // pread, not the mapping: see gguf::File::read_rows.
  OCTET_RETURN_IF_ERROR(file_->read_rows(*tok_embd_, t, 1, out));
  if (hp_.embd_scale != 1.f) kernels::scale_f32(out, hp_.embd_scale, hp_.n_embd);
  return Status::Ok();
}


}  // namespace octet
