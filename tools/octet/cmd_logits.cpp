// octet logits: raw float32 logits [n_tokens, n_vocab] for a token sequence (test oracle hook).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "common.h"

namespace {

struct LogitsArgs {
  octet::cli::EngineFlags engine;
  std::string tokens, prompt, out;
};

void run(const LogitsArgs& a) {
  using namespace octet;
  auto eng = cli::load_engine(a.engine);
  std::vector<Token> ids;
  if (!a.tokens.empty()) {
    std::stringstream ss(a.tokens);
    std::string item;
    while (std::getline(ss, item, ',')) {
      try {
        ids.push_back(static_cast<Token>(std::stol(item)));
      } catch (...) {
        cli::fail("bad token id '" + item + "'");
      }
    }
  } else {
    ids = eng->model->tokenizer().encode(a.prompt, true, false);
  }
  if (ids.empty()) cli::fail("no tokens");
  SessionOptions so = eng->session_opts;
  so.n_ctx = std::max<int64_t>(so.n_ctx, static_cast<int64_t>(ids.size()));
  Session s(eng->model, eng->weights, so, eng->pool.get());
  std::vector<float> logits;
  if (Status st = s.eval(ids, true, &logits); !st.ok()) cli::fail(st.message());
  std::ofstream out(a.out, std::ios::binary);
  out.write(reinterpret_cast<const char*>(logits.data()),
            static_cast<std::streamsize>(logits.size() * sizeof(float)));
  if (!out) cli::fail("cannot write " + a.out);
}

}  // namespace

static void register_logits(CLI::App& app) {
  auto a = std::make_shared<LogitsArgs>();
  auto* cmd = app.add_subcommand("logits", "Write raw float32 logits [n_tokens, n_vocab]");
  a->engine.add_to(cmd);
  cmd->add_option("--tokens", a->tokens, "comma-separated token ids (no BOS added)");
  cmd->add_option("-p,--prompt", a->prompt, "text (tokenized with BOS) instead of --tokens");
  cmd->add_option("-o,--out", a->out, "output file")->required();
  cmd->callback([a] { run(*a); });
}
OCTET_COMMAND("logits", register_logits);
