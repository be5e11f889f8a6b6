// The default model (Gemma 3 270M Q4_K_M in models/, installed by scripts/setup.sh) with its
// default INT8 calibration (the cached sidecar, made on first use): for tests on a real model.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "octet/calibration.h"
#include "octet/runtime.h"

namespace octet::test {

inline std::string default_model_path() {
  return std::string(OCTET_SOURCE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
}

// Loads the model into *model and its calibration into *calib; *model stays null when the
// model is not installed (the caller skips). Call through ASSERT_NO_FATAL_FAILURE.
inline void load_default_model(ThreadPool* pool, std::shared_ptr<const Model>* model,
                               Calibration* calib) {
  const std::string path = default_model_path();
  if (!std::filesystem::exists(path)) return;
  auto m = Model::load(path);
  ASSERT_TRUE(m.ok()) << m.error();
  auto c = load_or_calibrate(*m, path, "", pool, {});
  ASSERT_TRUE(c.ok()) << c.error();
  *model = *m;
  *calib = std::move(c).value();
}

}  // namespace octet::test
