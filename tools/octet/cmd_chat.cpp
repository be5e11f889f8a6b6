// octet chat: interactive conversation with the model's chat template. Each turn re-renders
// the conversation and reuses the KV cache for the longest common token prefix, so only the
// new turn is prefilled.
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "octet/generate.h"

namespace {

struct ChatArgs {
  octet::cli::EngineFlags engine;
  octet::cli::SamplingFlags sampling;
  std::string system;
  int64_t n = 512;
};

void run(const ChatArgs& a) {
  using namespace octet;
  auto eng = cli::load_engine(a.engine);
  const Tokenizer& tok = eng->model->tokenizer();
  const ChatTemplate tmpl = eng->model->chat_template();
  if (tmpl == ChatTemplate::kNone)
    std::fprintf(stderr, "octet: the model has no chat template; using plain turns\n");
  auto session = eng->new_session();
  std::vector<ChatMessage> msgs;
  if (!a.system.empty()) msgs.push_back({"system", a.system});
  std::fprintf(stderr, "octet chat (%s template). /reset clears, /exit or EOF quits.\n",
               chat_template_name(tmpl));
  std::string line;
  while (true) {
    std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      msgs.resize(a.system.empty() ? 0 : 1);
      session->truncate(0);
      continue;
    }
    if (line.empty()) continue;
    msgs.push_back({"user", line});
    std::vector<Token> ids = tok.encode(apply_chat_template(tmpl, msgs, true), true, true);
    // Keep the cached prefix; prefill only what differs.
    const auto& hist = session->history();
    size_t common = 0;
    while (common < hist.size() && common + 1 < ids.size() && hist[common] == ids[common])
      ++common;
    session->truncate(static_cast<int64_t>(common));
    std::vector<Token> rest(ids.begin() + static_cast<std::ptrdiff_t>(common), ids.end());
    if (static_cast<int64_t>(ids.size()) + 1 >= session->n_ctx()) {
      std::fprintf(stderr, "octet: conversation exceeds the context (%lld tokens); /reset\n",
                   static_cast<long long>(session->n_ctx()));
      msgs.pop_back();
      continue;
    }
    GenerateOptions opt;
    opt.max_tokens = std::min<int64_t>(a.n, session->n_ctx() - static_cast<int64_t>(ids.size()));
    opt.sampling = a.sampling.p;
    // generate() prefills `rest` on top of the kept prefix.
    auto r = generate(*session, rest, opt, [](const std::string& s) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    if (!r) {
      std::fprintf(stderr, "\noctet: %s\n", r.error().c_str());
      msgs.pop_back();
      continue;
    }
    std::printf("\n");
    std::fprintf(stderr, "[prefill %lld tok in %.0f ms, %zu tok at %.1f tok/s]\n",
                 static_cast<long long>(rest.size()), r->prefill_ms, r->tokens.size(),
                 r->decode_tok_s());
    msgs.push_back({"assistant", r->text});
  }
}

}  // namespace

static void register_chat(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  auto* cmd = app.add_subcommand("chat", "Interactive chat using the model's chat template");
  a->engine.add_to(cmd);
  a->sampling.add_to(cmd);
  cmd->add_option("--system", a->system, "system message");
  cmd->add_option("-n,--n-predict", a->n, "max tokens per reply");
  cmd->callback([a] { run(*a); });
}
OCTET_COMMAND("chat", register_chat);
