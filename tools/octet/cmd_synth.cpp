// octet synth: write a random-weight GGUF in the exact shape of a real model (docs/synth.md).
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "octet/synth.h"

namespace {

struct SynthArgs {
  std::string shape, type = "q8_0", head_type, out;
  int64_t layers = 0;
  uint64_t seed = 1;
  int outliers = 6, threads = 0;
  bool quiet = false, list = false;
};

int run(const SynthArgs& a) {
  using namespace octet;
  if (a.list) {
    for (const auto& s : synth::shapes()) {
      std::printf("%-14s arch %-6s layers %3" PRId64 " embd %5" PRId64 " heads %2" PRId64 "/%-2" PRId64
                  " ff %6" PRId64 " vocab %6" PRId64 "\n",
                  s.name, s.arch, s.n_layer, s.n_embd, s.n_head, s.n_head_kv, s.n_ff, s.n_vocab);
    }
    return 0;
  }
  if (a.shape.empty() || a.out.empty()) {
    std::fprintf(stderr, "octet synth: --shape and -o are required (--list shows the shapes)\n");
    return 1;
  }
  auto type = synth::parse_type(a.type);
  if (!type.ok()) {
    std::fprintf(stderr, "octet synth: %s\n", type.error().c_str());
    return 1;
  }
  synth::Options o;
  if (!a.head_type.empty()) {
    auto ht = synth::parse_type(a.head_type);
    if (!ht.ok()) {
      std::fprintf(stderr, "octet synth: --head-type: %s\n", ht.error().c_str());
      return 1;
    }
    o.head_type = *ht;
  }
  o.shape = a.shape;
  o.type = *type;
  o.n_layer = a.layers;
  o.seed = a.seed;
  o.n_outliers = a.outliers;
  o.threads = a.threads;
  o.progress = !a.quiet;
  auto r = synth::write_model(o, a.out);
  if (!r.ok()) {
    std::fprintf(stderr, "octet synth: %s\n", r.error().c_str());
    return 1;
  }
  std::string ch;
  for (int64_t c : r->outliers) ch += (ch.empty() ? "" : ",") + std::to_string(c);
  std::fprintf(stderr,
               "octet synth: wrote %s: %zu tensors, %.3f B params, %.1f MiB, %.1f s; outlier channels [%s]\n",
               a.out.c_str(), r->n_tensors, static_cast<double>(r->params) / 1e9,
               static_cast<double>(r->file_bytes) / (1 << 20), r->seconds, ch.c_str());
  return 0;
}

}  // namespace

static void register_synth(CLI::App& app) {
  auto a = std::make_shared<SynthArgs>();
  auto* cmd = app.add_subcommand("synth", "Write a random-weight GGUF shaped like a real model");
  cmd->add_option("--shape", a->shape, "qwen2.5-0.5b, qwen1.5-1.8b, gemma-2b, phi-2 or llama-2-7b");
  cmd->add_option("--type", a->type, "weight type: f16, q8_0, q4_0 (or f32)")->capture_default_str();
  cmd->add_option("--head-type", a->head_type,
                  "LM head (or tied embedding) type (default: q8_0 under q4_0, as llama.cpp's "
                  "fallback for rows that do not fit 256-blocks; else --type)");
  cmd->add_option("--layers", a->layers, "override the layer count (0: the model's own)");
  cmd->add_option("--seed", a->seed, "random seed")->capture_default_str();
  cmd->add_option("--outliers", a->outliers, "outlier channels in the residual stream")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "generator threads (0: all cores)");
  cmd->add_option("-o,--output", a->out, "output GGUF file");
  cmd->add_flag("-q,--quiet", a->quiet, "no progress on stderr");
  cmd->add_flag("--list", a->list, "list the shapes");
  cmd->callback([a] {
    if (int rc = run(*a); rc != 0) throw CLI::RuntimeError(rc);
  });
}
OCTET_COMMAND("synth", register_synth);
