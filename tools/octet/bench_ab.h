// octet bench --ab: two engine configurations compared in one process (bench_ab.cpp).
#pragma once
#include <string>
#include <vector>

#include "common.h"

namespace octet::cli {

// A = fa; B = fa with the spec's key=value changes (chunk, attn, kv-type, mode, shadow-keep,
// head, ffn-pair, hot-float, q4-gemm). Prefill of each prompt length, `rounds` alternating pairs, each
// the best of `reps`; prints each side's best and the median of the paired B/A ratios.
void run_ab(const EngineFlags& fa, const std::string& spec, const std::vector<int64_t>& prompts,
            int64_t rounds, int reps, bool json);

}  // namespace octet::cli
