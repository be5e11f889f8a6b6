// octet serve: an OpenAI-compatible HTTP service (docs/serve.md). The engine, queue, prefix
// cache and HTTP handling live in src/serve/; this file only parses flags and loads things.
#include <filesystem>

#include "commands.h"
#include "common.h"
#include "octet/serve.h"

namespace {

const char kChatHtml[] =
#include "chat_html.inc"
    ;

struct ServeArgs {
  octet::cli::EngineFlags engine;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string apps;
  int64_t cache_mb = 512;
  int64_t max_body_kb = 4096;
  int64_t default_max_tokens = 256;
  int64_t max_queue = 32;
  int64_t batch = 4;
  std::string model_id;
};

void run(const ServeArgs& a) {
  using namespace octet;
  serve::ServerOptions opt;
  opt.host = a.host;
  opt.port = a.port;
  opt.cache_bytes = static_cast<size_t>(a.cache_mb) << 20;
  opt.max_body_bytes = static_cast<size_t>(a.max_body_kb) << 10;
  opt.default_max_tokens = a.default_max_tokens;
  opt.max_queue = a.max_queue;
  opt.batch = a.batch;
  opt.index_html = kChatHtml;
  opt.verbose = a.engine.verbose;
  if (!a.apps.empty()) {
    bool ok = false;
    const std::string text = cli::read_file(a.apps, &ok);
    if (!ok) cli::fail("cannot read apps file " + a.apps);
    auto apps = serve::parse_apps(text);
    if (!apps) cli::fail(apps.error());
    opt.apps = std::move(apps).value();
  }
  // Load only after the cheap checks, so a typo in the apps file fails fast.
  auto eng = cli::load_engine(a.engine);
  opt.model_id = a.model_id.empty() ? std::filesystem::path(eng->model_path).stem().string()
                                    : a.model_id;
  serve::EngineRef ref{eng->model, eng->weights, eng->session_opts, eng->pool.get()};
  std::exit(serve::run_server(ref, opt));
}

}  // namespace

static void register_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (docs/serve.md)");
  a->engine.add_to(cmd);
  cmd->add_option("--host", a->host, "address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", a->port, "TCP port (0: any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--apps", a->apps, "apps file: API keys, priorities, limits (JSON)");
  cmd->add_option("--cache-mb", a->cache_mb, "prefix cache budget in MiB, split between apps")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--max-body-kb", a->max_body_kb, "largest request body in KiB")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--default-max-tokens", a->default_max_tokens,
                  "max_tokens of requests that give none")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-queue", a->max_queue,
                  "requests waiting for the engine before new ones get 503")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--batch", a->batch,
                  "requests in flight at once, their decode steps batched (1: off)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--model-id", a->model_id, "model name to report (default: file name)");
  cmd->callback([a] { run(*a); });
}
OCTET_COMMAND("serve", register_serve);
