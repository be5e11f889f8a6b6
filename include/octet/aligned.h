// 64-byte aligned storage for SIMD panels: packed weights and activations are read with
// full-width zmm loads that must not straddle cache lines. HugeVector buffers (the session's
// KV cache and chunk arena, int8 activations) also ask for transparent huge pages.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace octet::detail {

// Buffers of at least this many bytes are 2 MiB aligned and advised for huge pages.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// madvise(MADV_HUGEPAGE) on the whole 2 MiB pages of [p, p + n), for the system's THP mode
// "madvise" (Debian's default): one TLB entry per 2 MiB instead of per 4 KiB and 512× fewer
// first-touch page faults. Best effort: without THP support nothing changes.
// OCTET_NO_HUGEPAGES=1 turns it off (A/B runs). The advice stays on the range after it is
// freed (glibc may reuse heap ranges below its mmap threshold); harmless for correctness.
void huge_page_advise(void* p, size_t n);

// Huge: large buffers are advised for huge pages (the chunk arena, activations, KV cache);
// the weights are not — on this KVM guest, first touches of fresh huge pages made a model
// load 25-75 % slower (the host backs them on demand), for no measurable prefill gain.
template <class T, bool Huge = false>
struct Aligned64 {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = Aligned64<U, Huge>;
  };
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U, Huge>&) {}  // NOLINT: allocator rebind
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (Huge && bytes >= kHugePageBytes) {
      void* p = ::operator new(bytes, std::align_val_t(kHugePageBytes));
      huge_page_advise(p, bytes);
      return static_cast<T*>(p);
    }
    return static_cast<T*>(::operator new(bytes, std::align_val_t(64)));
  }
  void deallocate(T* p, size_t n) {
    if (Huge && n * sizeof(T) >= kHugePageBytes)
      ::operator delete(p, std::align_val_t(kHugePageBytes));
    else
      ::operator delete(p, std::align_val_t(64));
  }
  template <class U>
  bool operator==(const Aligned64<U, Huge>&) const { return true; }
};

template <class T>
using AlignedVector = std::vector<T, Aligned64<T>>;
template <class T>
using HugeVector = std::vector<T, Aligned64<T, true>>;

}  // namespace octet::detail
