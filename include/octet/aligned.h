// 64-byte aligned storage for SIMD panels: packed weights and activations are read with
// full-width zmm loads that must not straddle cache lines.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace octet::detail {

template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}  // NOLINT: allocator rebind
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const Aligned64<U>&) const { return true; }
};

template <class T>
using AlignedVector = std::vector<T, Aligned64<T>>;

}  // namespace octet::detail
