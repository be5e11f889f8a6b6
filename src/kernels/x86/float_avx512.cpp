// AVX-512 float kernels: the templates of kernels/float_impl.h on 16-lane zmm vectors.
// GEMM microkernel 8 rows × 48 columns (24 zmm accumulators, 3 panel loads and 8 embedded
// broadcasts per k step).
// GCC 12's _mm512_undefined_* self-initialise and trip -W(maybe-)uninitialized (PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "kernels/float_isa.h"

namespace octet::kernels::fimpl {
namespace {

#include "kernels/x86/avx512_traits.h"
#include "kernels/float_impl.h"

}  // namespace

const FloatKernels& kernels_avx512() {
  static const FloatKernels t = make_table<Avx512>(FloatIsa::kAvx512);
  return t;
}

}  // namespace octet::kernels::fimpl
