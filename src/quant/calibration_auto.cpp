// Finding a calibration for an INT8 run: cached sidecar first, else calibrate and cache.
#include <filesystem>

#include <fmt/format.h>

#include "octet/calibration.h"

namespace octet {

namespace {
// First-use calibration runs the FP32 model three times over this many tokens: enough for
// stable percentiles (measured on Gemma: 1512 tokens), bounded for large models.
constexpr int64_t kAutoTokens = 2048;
// text_source of a first-use calibration (the built-in text, options by default).
constexpr const char* kFirstUse = "builtin (first use)";
}  // namespace

CalibOptions default_calib_options(const Model& m) {
  CalibOptions o;
  if (q4_gemm_applies(m)) o.smooth_alpha = 0;
  return o;
}

Expected<Calibration> calibrate_text(std::shared_ptr<const Model> model, const std::string& text,
                                     const std::string& source, const CalibOptions& opt,
                                     int64_t max_tokens, ThreadPool* pool,
                                     const std::function<void(const std::string&)>& progress) {
  const std::string& t = text.empty() ? builtin_calibration_text() : text;
  std::vector<Token> toks = model->tokenizer().encode(t, false, false);
  if (max_tokens > 0 && static_cast<int64_t>(toks.size()) > max_tokens)
    toks.resize(static_cast<size_t>(max_tokens));
  if (progress)
    progress(fmt::format("calibrating on {} tokens of {} (FP32 reference, two passes)",
                         toks.size(), text.empty() ? std::string("built-in text") : source));
  OCTET_ASSIGN_OR_RETURN(auto fp32, Weights::build_fp32(*model, pool));
  OCTET_ASSIGN_OR_RETURN(Calibration c, calibrate(model, fp32, toks, opt, pool, progress));
  c.model_fingerprint = model_fingerprint(model->file());
  c.text_source = text.empty() ? "builtin" : source;
  return c;
}

Expected<Calibration> load_or_calibrate(std::shared_ptr<const Model> model,
                                        const std::string& model_path,
                                        const std::string& sidecar, ThreadPool* pool,
                                        const std::function<void(const std::string&)>& progress) {
  const std::string path = sidecar.empty() ? calibration_path(model_path) : sidecar;
  const std::string fp = model_fingerprint(model->file());
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    auto c = Calibration::load(path);
    if (!c) {
      if (!sidecar.empty()) return c.status();  // an explicit file must be valid
      if (progress) progress("ignoring unreadable calibration " + path + ": " + c.error());
    } else if (c->model_fingerprint != fp ||
               static_cast<int64_t>(c->layers.size()) != model->hparams().n_layer) {
      if (!sidecar.empty())
        return Status::Error("calibration " + path + " was made for a different model file");
      if (progress) progress("calibration " + path + " is for another version of the model");
    } else if (sidecar.empty() && c->text_source == kFirstUse &&
               c->opts.smooth_alpha != default_calib_options(*model).smooth_alpha) {
      // Made at first use under another default (this CPU class's GEMM, or an older octet):
      // redone, since nobody chose its options. `octet calibrate` output is kept as it is.
      if (progress)
        progress(fmt::format("calibration {} was made at first use with smoothing {}; the "
                             "default here is {}: recalibrating",
                             path, c->opts.smooth_alpha,
                             default_calib_options(*model).smooth_alpha));
    } else {
      return c;
    }
  } else if (!sidecar.empty()) {
    return Status::Error("calibration file not found: " + path);
  }
  OCTET_ASSIGN_OR_RETURN(Calibration c,
                         calibrate_text(model, "", "", default_calib_options(*model), kAutoTokens, pool,
                                        progress));
  c.text_source = kFirstUse;
  if (Status s = c.save(path); !s.ok()) {
    if (progress) progress("could not cache the calibration (" + s.message() + "); continuing");
  } else if (progress) {
    progress("calibration cached in " + path);
  }
  return c;
}

}  // namespace octet
