// Run-time CPU feature detection (cpuid): kernels dispatch on it, never on compile flags.
#pragma once
#include <string>

namespace octet {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false, avxvnni = false;
  bool has_avx512() const { return avx512f && avx512bw && avx512vl && avx512dq; }
  std::string describe() const;  // "avx2 fma avx512f ..."
};

// Detected once; OCTET_ISA=ref|avx2|avx512 in the environment caps what is reported
// (for testing fallbacks on a bigger machine).
const CpuFeatures& cpu_features();

}  // namespace octet
