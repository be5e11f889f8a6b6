// Read-only memory map of a whole file. Move-only; unmaps on destruction.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "octet/status.h"

namespace octet {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // An empty file maps to {nullptr, 0} (mmap cannot map zero bytes).
  static Expected<MappedFile> open(const std::string& path);

  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }
  size_t size() const { return size_; }
  // Gives up ownership of the mapping; the caller must call unmap(addr, size) later.
  void* release();
  static void unmap(void* addr, size_t size);

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace octet
