// octet calibrate: measures activation ranges, outliers, hot channels and shadow-path
// importance for INT8 prefill on real text, and writes the sidecar next to the model.
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "octet/calibration.h"

namespace {

struct CalibArgs {
  octet::cli::EngineFlags engine;
  std::string text_file, out;
  int64_t max_tokens = 8192;
  octet::CalibOptions opts;
  bool smooth_set = false;  // --smooth given (else default_calib_options decides)
  bool quiet = false;
};

void run(const CalibArgs& a) {
  using namespace octet;
  std::string text;
  if (!a.text_file.empty()) {
    bool ok;
    text = cli::read_file(a.text_file, &ok);
    if (!ok) cli::fail("cannot read " + a.text_file);
    if (text.empty()) cli::fail(a.text_file + " is empty");
  }
  cli::EngineFlags ef = a.engine;
  const std::string path = cli::resolve_model(ef.model);
  auto m = Model::load(path);
  if (!m) cli::fail(m.error());
  std::shared_ptr<const Model> model = std::move(m).value();
  ThreadPool pool(ef.threads);
  auto say = [&](const std::string& s) {
    if (!a.quiet) std::fprintf(stderr, "octet: %s\n", s.c_str());
  };
  CalibOptions opts = a.opts;
  if (!a.smooth_set) {
    opts.smooth_alpha = default_calib_options(*model).smooth_alpha;
    if (opts.smooth_alpha == 0)
      say("no smoothing: most of this model's prefill GEMMs read its own 4-5 bit blocks here "
          "(--smooth A overrides; docs/calibration.md)");
  }
  auto c = calibrate_text(model, text, a.text_file, opts, a.max_tokens, &pool, say);
  if (!c) cli::fail(c.error());
  const std::string out = a.out.empty() ? calibration_path(path) : a.out;
  if (Status s = c->save(out); !s.ok()) cli::fail(s.message());
  int64_t clipped = 0, hot = 0;
  double outliers = 0;
  for (const auto& l : c->layers)
    for (const auto& s : l) {
      clipped += s.clip < s.absmax;
      hot += static_cast<int64_t>(s.hot.size());
      outliers += s.outlier_rate;
    }
  std::printf("wrote %s: %lld tokens, %zu layers, %lld of %zu linear inputs clipped, "
              "%lld hot channels, mean outlier rate %.4f %%\n",
              out.c_str(), static_cast<long long>(c->tokens), c->layers.size(),
              static_cast<long long>(clipped), c->layers.size() * kSlots,
              static_cast<long long>(hot), 100 * outliers / (c->layers.size() * kSlots));
}

}  // namespace

static void register_calibrate(CLI::App& app) {
  auto a = std::make_shared<CalibArgs>();
  auto* cmd = app.add_subcommand(
      "calibrate", "Calibrate INT8 prefill on text; writes MODEL.octet-calib.json");
  cmd->add_option("-m,--model", a->engine.model, "GGUF file, or 'default'");
  cmd->add_option("-t,--threads", a->engine.threads, "worker threads (0: all cores)");
  cmd->add_option("-f,--file", a->text_file, "calibration text (default: built-in sample)");
  cmd->add_option("-o,--out", a->out, "output file (default: next to the model)");
  cmd->add_option("--max-tokens", a->max_tokens, "use at most this many tokens of the text")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 24));
  cmd->add_option("--percentile", a->opts.percentile, "clip percentile of |x|")
      ->check(CLI::Range(50.0, 100.0));
  cmd->add_option("--ratio", a->opts.ratio, "clip only when max/percentile exceeds this")
      ->check(CLI::Range(1.0, 1e6));
  cmd->add_option("--qerr-target", a->opts.qerr_target,
                  "largest clip whose int8 noise on the bulk stays within this (0: clip at the "
                  "percentile)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--hot-freq", a->opts.hot_freq, "outlier frequency that makes a channel hot")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option_function<double>(
         "--smooth",
         [a](double v) {
           a->opts.smooth_alpha = v;
           a->smooth_set = true;
         },
         "smoothing strength alpha (0: off; SmoothQuant-style, folded into producers). "
         "Default 0.25, or 0 where most of the model's prefill GEMMs read its own 4-5 bit "
         "blocks (CPUs without AVX-512 VNNI; the file's weights cannot absorb the factors)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("-q,--quiet", a->quiet, "no progress on stderr");
  cmd->callback([a] { run(*a); });
}
OCTET_COMMAND("calibrate", register_calibrate);
