// octet run: one prompt in, generated text out (stdout); timings on stderr.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "common.h"
#include "octet/generate.h"
#include "octet/memory.h"
#include "octet/session_file.h"

namespace {

struct RunArgs {
  octet::cli::EngineFlags engine;
  octet::cli::SamplingFlags sampling;
  std::string prompt, prompt_file, system, tokens_out, session_file;
  int64_t n = 128;
  int64_t spec = 0;
  std::vector<std::string> stop;
  bool chat = false, no_bos = false, ignore_eos = false;
};

void run(const RunArgs& a) {
  using namespace octet;
  std::string prompt = a.prompt;
  if (!a.prompt_file.empty()) {
    bool ok;
    prompt = cli::read_file(a.prompt_file, &ok);
    if (!ok) cli::fail("cannot read prompt file " + a.prompt_file);
  }
  auto eng = cli::load_engine(a.engine);
  const Tokenizer& tok = eng->model->tokenizer();
  if (a.chat) {
    std::vector<ChatMessage> msgs;
    if (!a.system.empty()) msgs.push_back({"system", a.system});
    msgs.push_back({"user", prompt});
    prompt = apply_chat_template(eng->model->chat_template(), msgs, true);
  }
  std::vector<Token> ids = tok.encode(prompt, !a.no_bos, a.chat);
  if (ids.empty()) {
    if (tok.bos() < 0) cli::fail("empty prompt and the model has no BOS token");
    ids.push_back(tok.bos());
  }
  auto session = eng->new_session();
  // --session F: restore the longest common prefix of F's tokens and the prompt (always
  // leaving one prompt token to evaluate, for fresh logits), prefill only the rest.
  size_t reuse = 0;
  if (!a.session_file.empty() && std::filesystem::exists(a.session_file)) {
    auto snap = load_session_file(a.session_file, *eng->model);
    if (!snap) cli::fail(snap.error());
    while (reuse < snap->tokens.size() && reuse + 1 < ids.size() && snap->tokens[reuse] == ids[reuse])
      ++reuse;
    if (reuse > 0) {
      if (Status st = session->load_kv(*snap, static_cast<int64_t>(reuse)); !st.ok()) {
        if (snap->type != session->kv_type()) cli::fail(st.message());
        std::fprintf(stderr, "octet: session %s not reused (%s)\n", a.session_file.c_str(),
                     st.message().c_str());
        reuse = 0;
      }
    }
    if (a.engine.verbose || reuse > 0)
      std::fprintf(stderr, "octet: session %s: reused %zu of %zu prompt tokens\n",
                   a.session_file.c_str(), reuse, ids.size());
  }
  GenerateOptions opt;
  if (!a.session_file.empty())
    opt.on_prefilled = [&] {
      const KvSnapshot snap = session->save_kv(session->n_past());
      if (Status st = save_session_file(a.session_file, *eng->model, snap); !st.ok())
        cli::fail(st.message());
    };
  opt.max_tokens = a.n;
  opt.stop = a.stop;
  opt.stop_at_eog = !a.ignore_eos;
  opt.sampling = a.sampling.p;
  opt.spec_draft = a.spec;
  const std::vector<Token> rest(ids.begin() + static_cast<std::ptrdiff_t>(reuse), ids.end());
  auto r = generate(*session, rest, opt, [](const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  if (!r) cli::fail(r.error());
  std::printf("\n");
  std::fflush(stdout);  // before the stats on stderr, also when both go to one file
  if (!a.tokens_out.empty()) {
    std::ofstream out(a.tokens_out);
    for (Token t : r->tokens) out << t << "\n";
    if (!out) cli::fail("cannot write " + a.tokens_out);
  }
  std::fprintf(stderr,
               "octet: prompt %lld tokens, prefill %.1f ms (%.1f tok/s, %s, chunk %lld); "
               "generated %zu tokens, decode %.1f tok/s; finish: %s\n",
               static_cast<long long>(r->prompt_tokens), r->prefill_ms, r->prefill_tok_s(),
               compute_mode_name(eng->weights->mode()),
               static_cast<long long>(eng->session_opts.chunk), r->tokens.size(),
               r->decode_tok_s(), r->finish_reason.c_str());
  if (a.spec > 0)
    std::fprintf(stderr,
                 "octet: speculative (prompt lookup, draft %lld): %lld decode evals for %zu "
                 "tokens (%.2f tokens/eval), drafted %lld, accepted %lld (%.1f%%)\n",
                 static_cast<long long>(a.spec), static_cast<long long>(r->decode_evals),
                 r->tokens.size(),
                 r->decode_evals ? static_cast<double>(r->tokens.size()) / r->decode_evals : 0.0,
                 static_cast<long long>(r->spec_drafted), static_cast<long long>(r->spec_accepted),
                 r->spec_drafted ? 100.0 * r->spec_accepted / r->spec_drafted : 0.0);
  if (a.engine.verbose) {
    constexpr double MiB = 1048576.0;
    const ProcMemory pm = proc_memory(eng->model_path);
    const WeightBytes wb = eng->weights->breakdown();
    std::fprintf(stderr,
                 "octet: memory (MiB): peak RSS %.1f, now %.1f = anon %.1f + GGUF file pages "
                 "%.1f (+ other files); weights: int8 %.1f, int8 LM head %.1f, hot float %.1f, "
                 "fp32 %.1f, small (+ Q4 row index) %.1f, read in place from the file %.1f; KV %.1f (%s, ctx %lld, "
                 "window slots %lld); arena %.1f\n",
                 pm.peak_rss / MiB, pm.rss / MiB, pm.rss_anon / MiB, pm.file_resident / MiB,
                 wb.int8 / MiB, wb.int8_lm_head / MiB, wb.hot_float / MiB, wb.f32 / MiB,
                 (wb.small + wb.q4_index) / MiB, wb.gguf_mapped / MiB, session->kv_bytes() / MiB,
                 kernels::kv_type_name(session->kv_type()),
                 static_cast<long long>(session->n_ctx()),
                 static_cast<long long>(session->window_slots()), session->arena_bytes() / MiB);
    if (wb.q4_macs > 0)
      std::fprintf(stderr,
                   "octet: prefill GEMM on the file's own blocks for %.0f %% of the int8 "
                   "linears' multiply-adds (--q4-gemm; docs/kernels-int8.md)\n",
                   100.0 * static_cast<double>(wb.q4_macs) / static_cast<double>(wb.int8_macs));
  }
}

}  // namespace

static void register_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Generate a continuation of a prompt");
  a->engine.add_to(cmd);
  a->sampling.add_to(cmd);
  cmd->add_option("-p,--prompt", a->prompt, "prompt text");
  cmd->add_option("-f,--file", a->prompt_file, "read the prompt from a file");
  cmd->add_option("-n,--n-predict", a->n, "tokens to generate")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--stop", a->stop, "stop string (repeatable)");
  cmd->add_flag("--chat", a->chat, "wrap the prompt in the model's chat template");
  cmd->add_option("--system", a->system, "system message (with --chat)");
  cmd->add_flag("--no-bos", a->no_bos, "do not add BOS");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "keep generating past end-of-generation tokens");
  cmd->add_option("--tokens-out", a->tokens_out, "write generated token ids, one per line");
  cmd->add_option("--spec", a->spec,
                  "speculative decoding by prompt lookup: draft up to N tokens from earlier "
                  "text, verify them in one eval (greedy only; output unchanged)")
      ->check(CLI::Range(0, 64));
  cmd->add_option("--session", a->session_file,
                  "session file: restore the KV of a matching prompt prefix from it (if it "
                  "exists), save the prompt's KV to it after prefill");
  cmd->callback([a] { run(*a); });
}
OCTET_COMMAND("run", register_run);
