// Calibration sidecar (JSON) and model fingerprints. Format: docs/calibration.md.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "octet/calibration.h"

namespace octet {

namespace {
constexpr int kFormatVersion = 3;  // 2: smoothing factors; 3: per-tensor clip (qerr)
}

std::string model_fingerprint(const gguf::File& f) {
  // FNV-1a over the metadata and tensor table (everything before the tensor data) + size:
  // cheap, and any re-quantisation or edit of the model changes it.
  uint64_t h = 1469598103934665603ull;
  const uint64_t n = std::min<uint64_t>(f.data_offset(), f.size());
  for (uint64_t i = 0; i < n; ++i) {
    h ^= f.base()[i];
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}-{}", h, f.size());
}

std::string calibration_path(const std::string& model_path) {
  return model_path + ".octet-calib.json";
}

Status Calibration::save(const std::string& path) const {
  nlohmann::json j;
  j["format"] = "octet-calibration";
  j["version"] = kFormatVersion;
  j["model_fingerprint"] = model_fingerprint;
  j["text_source"] = text_source;
  j["tokens"] = tokens;
  j["options"] = {{"percentile", opts.percentile},
                  {"ratio", opts.ratio},
                  {"hot_freq", opts.hot_freq},
                  {"segment", opts.segment},
                  {"smooth_alpha", opts.smooth_alpha},
                  {"qerr_target", opts.qerr_target}};
  nlohmann::json ls = nlohmann::json::array();
  for (const auto& layer : layers) {
    nlohmann::json l;
    for (int s = 0; s < kSlots; ++s) {
      const SlotCalib& c = layer[s];
      l[slot_name(static_cast<Slot>(s))] = {{"absmax", c.absmax},
                                           {"pct", c.pct},
                                           {"clip", c.clip},
                                           {"qerr", c.qerr},
                                           {"hot", c.hot},
                                           {"outlier_rate", c.outlier_rate},
                                           {"importance", c.importance},
                                           {"smooth", c.smooth}};
    }
    ls.push_back(l);
  }
  j["layers"] = ls;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(1) << "\n";
    if (!out) return Status::Error("calibration: cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::Error("calibration: cannot rename " + tmp + " to " + path);
  return Status::Ok();
}

Expected<Calibration> Calibration::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Error("calibration: cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::Error("calibration: " + path + " is not valid JSON");
  try {
    if (j.value("format", "") != "octet-calibration" || j.value("version", 0) != kFormatVersion)
      return Status::Error("calibration: " + path + " has an unknown format or version");
    Calibration c;
    c.model_fingerprint = j.at("model_fingerprint").get<std::string>();
    c.text_source = j.value("text_source", "");
    c.tokens = j.value("tokens", int64_t{0});
    const auto& o = j.at("options");
    c.opts.percentile = o.at("percentile").get<double>();
    c.opts.ratio = o.at("ratio").get<double>();
    c.opts.hot_freq = o.at("hot_freq").get<double>();
    c.opts.segment = o.at("segment").get<int64_t>();
    c.opts.smooth_alpha = o.value("smooth_alpha", 0.0);
    c.opts.qerr_target = o.value("qerr_target", 0.0);
    for (const auto& l : j.at("layers")) {
      std::array<SlotCalib, kSlots> layer;
      for (int s = 0; s < kSlots; ++s) {
        const auto& e = l.at(slot_name(static_cast<Slot>(s)));
        SlotCalib& sc = layer[s];
        sc.absmax = e.at("absmax").get<float>();
        sc.pct = e.at("pct").get<float>();
        sc.clip = e.at("clip").get<float>();
        sc.qerr = e.value("qerr", 0.0);
        sc.hot = e.at("hot").get<std::vector<int32_t>>();
        sc.outlier_rate = e.at("outlier_rate").get<double>();
        sc.importance = e.at("importance").get<double>();
        sc.smooth = e.value("smooth", std::vector<float>{});
        for (float v : sc.smooth)
          if (!(v > 0) || !std::isfinite(v))
            return Status::Error("calibration: " + path + " has a non-positive smoothing factor");
        if (!(sc.clip > 0) || !std::isfinite(sc.clip))
          return Status::Error("calibration: " + path + " has a non-positive clip");
      }
      c.layers.push_back(layer);
    }
    return c;
  } catch (const std::exception& e) {
    return Status::Error("calibration: " + path + ": " + e.what());
  }
}

}  // namespace octet
