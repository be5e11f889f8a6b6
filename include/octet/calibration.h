// Calibration for W8A8 prefill (DESIGN.md idea 2): for every linear input, a static
// per-tensor clip range (hence int8 scale), the channels that are often outliers ("hot"),
// and how much the shadow-outlier correction matters there (for pruning).
//
// Sidecar file: MODEL.gguf.octet-calib.json (format in docs/calibration.md).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <functional>
#include <string>
#include <vector>

#include "octet/model.h"
#include "octet/runtime.h"
#include "octet/status.h"

namespace octet {

// The four linear inputs of a block. kAttnIn feeds q/k/v, kAttnOut feeds o, kFfnIn feeds
// gate/up, kFfnMid (the gated activation) feeds down.
enum class Slot : int { kAttnIn = 0, kAttnOut = 1, kFfnIn = 2, kFfnMid = 3 };
inline constexpr int kSlots = 4;
const char* slot_name(Slot s);

struct SlotCalib {
  float absmax = 0;      // max |x| seen
  float pct = 0;         // |x| at the clip percentile
  float clip = 0;        // the int8 range: activations are clipped to [-clip, clip]
  // Estimated int8 rounding noise of the entries within clip, relative to the RMS of the
  // "bulk" (entries up to pct): sqrt(Σ e²) / sqrt(Σ_{|x|<=pct} x²) from the histogram.
  double qerr = 0;
  std::vector<int32_t> hot;   // input channels that are outliers in >= hot_freq of tokens
  double outlier_rate = 0;    // share of entries beyond clip
  double importance = 0;      // ||(x − clip(x))·Wᵀ|| / ||x·Wᵀ||: error added without shadow
  // Per-input-channel smoothing s (empty: none). The int8 path sees x/s and W·diag(s); the
  // 1/s is folded into the producer (the RMSNorm gain, or the up-projection rows), so it is
  // free at run time. All other fields describe the smoothed activations x/s.
  std::vector<float> smooth;
  float scale() const { return clip > 0 ? clip / 127.f : 1.f; }
};

struct CalibOptions {
  double percentile = 99.0;   // of |x| per tensor: the tightest clip (docs/results.md)
  double ratio = 4.0;         // clip at all only if absmax / pct exceeds this
  // Per tensor, the clip is the largest value in [pct, absmax] (fewest shadow outliers)
  // whose estimated int8 noise on the bulk (SlotCalib::qerr) stays within this target;
  // 0 keeps the clip at pct (the version-2 rule). Measured: docs/results.md.
  double qerr_target = 0.0075;
  double hot_freq = 0.02;     // a channel is hot if it is an outlier in >= 2 % of tokens
  int64_t segment = 512;      // tokens per forward segment
  // Smoothing strength α: s_k = max|x_k|^α / max|W[:,k]|^(1−α) (SmoothQuant). 0: off.
  // Applied to attn_in, ffn_in and ffn_mid, whose producers can absorb 1/s exactly.
  double smooth_alpha = 0.25;
};

// The options a calibration gets unless told otherwise (first use, `octet calibrate`): no
// smoothing where most of the model's prefill GEMMs read its own blocks (q4_gemm_applies:
// the file's weights cannot absorb s; 40 WikiText chunks, KL vs FP32: Gemma 3 270M Q4_K_M
// unsmoothed 0.0050 vs smoothed 0.0059 both on the int8 copy; requantised to Q4_0,
// unsmoothed + blocks 0.0053 vs smoothed + int8 copy 0.0070), else the defaults above.
CalibOptions default_calib_options(const Model& m);

struct Calibration {
  std::string model_fingerprint;
  std::string text_source;
  int64_t tokens = 0;
  CalibOptions opts;
  std::vector<std::array<SlotCalib, kSlots>> layers;

  const SlotCalib& at(int64_t layer, Slot s) const { return layers[layer][int(s)]; }
  Status save(const std::string& path) const;
  static Expected<Calibration> load(const std::string& path);
};

// A cheap identity for a model file (size + FNV-1a of its metadata region).
std::string model_fingerprint(const gguf::File& f);
// The sidecar path for a model file.
std::string calibration_path(const std::string& model_path);
// Built-in calibration text (original prose, code and dialogue; no overlap with WikiText).
const std::string& builtin_calibration_text();

// Runs the FP32 model over the text twice (ranges, then outlier statistics).
Expected<Calibration> calibrate(std::shared_ptr<const Model> model,
                                std::shared_ptr<const Weights> fp32,
                                const std::vector<Token>& tokens, const CalibOptions& opt,
                                ThreadPool* pool,
                                const std::function<void(const std::string&)>& progress = {});

}  // namespace octet

namespace octet {
// The calibration for an INT8 run: the sidecar when it exists and matches the model;
// otherwise calibrates on the built-in text (progress reported) and caches the result in
// the sidecar (a warning, not an error, when the directory is read-only).
Expected<Calibration> load_or_calibrate(std::shared_ptr<const Model> model,
                                        const std::string& model_path,
                                        const std::string& sidecar, ThreadPool* pool,
                                        const std::function<void(const std::string&)>& progress);
// Calibrates on given text (or the built-in sample when text is empty).
Expected<Calibration> calibrate_text(std::shared_ptr<const Model> model, const std::string& text,
                                     const std::string& source, const CalibOptions& opt,
                                     int64_t max_tokens, ThreadPool* pool,
                                     const std::function<void(const std::string&)>& progress);
}  // namespace octet
