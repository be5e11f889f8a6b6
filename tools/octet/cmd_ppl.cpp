// octet ppl: perplexity over a text file, llama.cpp's method (chunks of --ctx tokens, BOS
// first, the second half of each chunk scored). In a non-fp32 mode it also runs fp32 on the
// same chunks and reports mean KL(fp32 || mode) and top-1 agreement.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"

namespace {

struct PplArgs {
  octet::cli::EngineFlags engine;
  std::string file;
  int64_t chunks = 0;  // 0: all
  std::string kv_ref;  // reference = same weights with this KV type (instead of fp32 weights)
  bool json = false;
};

// log-softmax of one row at index t, plus the softmax itself into p (for KL).
double log_prob(const float* l, int64_t n, int64_t t, std::vector<double>* p) {
  float mx = l[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, l[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(l[i]) - mx);
  const double lse = mx + std::log(s);
  if (p) {
    p->resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) (*p)[i] = static_cast<double>(l[i]) - lse;  // log p
  }
  return static_cast<double>(l[t]) - lse;
}

void run(const PplArgs& a) {
  using namespace octet;
  bool ok;
  const std::string text = cli::read_file(a.file, &ok);
  if (!ok) cli::fail("cannot read " + a.file);
  auto eng = cli::load_engine(a.engine);
  std::shared_ptr<const Weights> ref;  // fp32 reference for KL when mode != fp32
  kernels::KvType ref_kv = eng->session_opts.kv_type;
  if (!a.kv_ref.empty()) {
    if (!kernels::parse_kv_type(a.kv_ref.c_str(), &ref_kv)) cli::fail("unknown --kv-ref " + a.kv_ref);
    ref = eng->weights;
  } else if (eng->weights->mode() != ComputeMode::kFp32) {
    auto w = Weights::build_fp32(*eng->model, eng->pool.get());
    if (!w) cli::fail(w.error());
    ref = std::move(w).value();
  }
  const Tokenizer& tok = eng->model->tokenizer();
  std::vector<Token> ids = tok.encode(text, true, false);
  const int64_t n_ctx = a.engine.ctx, V = eng->model->hparams().n_vocab;
  const int64_t avail = static_cast<int64_t>(ids.size()) / n_ctx;
  const int64_t n_chunks = a.chunks > 0 ? std::min(a.chunks, avail) : avail;
  if (n_chunks < 1)
    cli::fail("text too short: " + std::to_string(ids.size()) + " tokens for ctx " +
              std::to_string(n_ctx));
  SessionOptions so = eng->session_opts;
  so.n_ctx = n_ctx;
  Session s(eng->model, eng->weights, so, eng->pool.get());
  std::unique_ptr<Session> sref;
  SessionOptions sor = so;
  sor.kv_type = ref_kv;
  if (ref) sref = std::make_unique<Session>(eng->model, ref, sor, eng->pool.get());
  double nll = 0, nll_ref = 0, kl = 0;
  int64_t count = 0, agree = 0;
  std::vector<float> logits, rlogits;
  std::vector<double> lp, lq;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<Token> chunk(ids.begin() + c * n_ctx, ids.begin() + (c + 1) * n_ctx);
    if (tok.bos() >= 0 && tok.add_bos()) chunk[0] = tok.bos();
    s.truncate(0);
    if (Status st = s.eval(chunk, true, &logits); !st.ok()) cli::fail(st.message());
    if (sref) {
      sref->truncate(0);
      if (Status st = sref->eval(chunk, true, &rlogits); !st.ok()) cli::fail(st.message());
    }
    for (int64_t j = n_ctx / 2; j < n_ctx - 1; ++j) {
      const float* l = logits.data() + j * V;
      nll -= log_prob(l, V, chunk[j + 1], sref ? &lq : nullptr);
      if (sref) {
        const float* r = rlogits.data() + j * V;
        nll_ref -= log_prob(r, V, chunk[j + 1], &lp);
        double k = 0;
        for (int64_t i = 0; i < V; ++i) k += std::exp(lp[i]) * (lp[i] - lq[i]);
        kl += k;
        agree += argmax(l, V) == argmax(r, V);
      }
      ++count;
    }
    if (!a.json)
      std::fprintf(stderr, "[%lld/%lld] ppl %.4f\n", static_cast<long long>(c + 1),
                   static_cast<long long>(n_chunks), std::exp(nll / count));
  }
  const double ppl = std::exp(nll / count);
  if (a.json) {
    nlohmann::json j = {{"model", eng->model->name()},
                        {"mode", compute_mode_name(eng->weights->mode())},
                        {"ctx", n_ctx},
                        {"kv_type", kernels::kv_type_name(so.kv_type)},
                        {"chunks", n_chunks},
                        {"tokens_scored", count},
                        {"ppl", ppl}};
    if (sref) {
      j["reference"] = a.kv_ref.empty() ? "fp32 weights" : "kv " + a.kv_ref;
      j["kl_mean"] = kl / count;
      j["ppl_ref"] = std::exp(nll_ref / count);  // the reference's own perplexity, same chunks
      j["top1_agree"] = static_cast<double>(agree) / count;
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("perplexity %.4f over %lld tokens (%lld chunks of %lld, %s, KV %s)\n", ppl,
                static_cast<long long>(count), static_cast<long long>(n_chunks),
                static_cast<long long>(n_ctx), compute_mode_name(eng->weights->mode()),
                kernels::kv_type_name(so.kv_type));
    if (sref)
      std::printf("vs %s (its perplexity %.4f): mean KL %.3g, top-1 agreement %.2f%%\n",
                  a.kv_ref.empty() ? "fp32" : ("KV " + a.kv_ref).c_str(),
                  std::exp(nll_ref / count), kl / count, 100.0 * agree / count);
  }
}

}  // namespace

static void register_ppl(CLI::App& app) {
  auto a = std::make_shared<PplArgs>();
  auto* cmd = app.add_subcommand("ppl", "Perplexity of a text (and KL vs fp32 in int8 mode)");
  a->engine.add_to(cmd);
  a->engine.ctx = 512;
  cmd->add_option("-f,--file", a->file, "text file")->required();
  cmd->add_option("--chunks", a->chunks, "chunks to score (0: all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--kv-ref", a->kv_ref,
                  "compare against the same weights with this KV type (f32|f16|int8) instead "
                  "of fp32 weights: the accuracy cost of --kv-type alone")
      ->check(CLI::IsMember({"f32", "f16", "int8"}));
  cmd->add_flag("--json", a->json, "print one JSON object");
  cmd->callback([a] { run(*a); });
}
OCTET_COMMAND("ppl", register_ppl);
