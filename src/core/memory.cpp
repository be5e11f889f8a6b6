#include "octet/memory.h"

#include "octet/aligned.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace octet {

namespace {
// "Name:   1234 kB" -> bytes.
size_t kb_field(const std::string& line) {
  size_t i = line.find(':');
  if (i == std::string::npos) return 0;
  return static_cast<size_t>(std::strtoull(line.c_str() + i + 1, nullptr, 10)) * 1024;
}
}  // namespace

ProcMemory proc_memory(const std::string& path) {
  ProcMemory m;
  std::ifstream st("/proc/self/status");
  for (std::string line; std::getline(st, line);) {
    if (line.rfind("VmRSS:", 0) == 0) m.rss = kb_field(line);
    else if (line.rfind("VmHWM:", 0) == 0) m.peak_rss = kb_field(line);
    else if (line.rfind("RssAnon:", 0) == 0) m.rss_anon = kb_field(line);
    else if (line.rfind("RssFile:", 0) == 0) m.rss_file = kb_field(line);
  }
  if (path.empty()) return m;
  std::error_code ec;
  const std::string want = std::filesystem::weakly_canonical(path, ec).string();
  std::ifstream sm("/proc/self/smaps");
  bool in = false;
  for (std::string line; std::getline(sm, line);) {
    // Mapping header: "start-end perms offset dev inode   pathname".
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') < line.find(' ')) {
      const size_t slash = line.find('/');
      in = slash != std::string::npos && line.compare(slash, std::string::npos, want) == 0;
    } else if (in && line.rfind("Rss:", 0) == 0) {
      m.file_resident += kb_field(line);
    }
  }
  return m;
}

void release_file_pages(const void* p, size_t n) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t lo = (a + page - 1) / page * page, hi = (a + n) / page * page;
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

void populate_file_pages(const void* p, size_t n) {
  if (!p || n == 0) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t a = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + n;
#ifdef MADV_POPULATE_READ
  // Linux 5.14+: page tables filled in one call (reading from disk what the cache lacks).
  if (madvise(reinterpret_cast<void*>(a), end - a, MADV_POPULATE_READ) == 0) return;
#endif
  // Older kernels: one read per page (fault-around maps its neighbours from the cache).
  unsigned sum = 0;
  for (uintptr_t q = a < reinterpret_cast<uintptr_t>(p) ? a + page : a; q < end; q += page)
    sum += *reinterpret_cast<const volatile unsigned char*>(q);
  (void)sum;
}

namespace detail {

void huge_page_advise(void* p, size_t n) {
  static const bool off = [] {
    const char* e = std::getenv("OCTET_NO_HUGEPAGES");
    return e && *e && *e != '0';
  }();
  if (off || !p || n < kHugePageBytes) return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t lo = (a + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const uintptr_t hi = (a + n) / kHugePageBytes * kHugePageBytes;
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
}

}  // namespace detail
}  // namespace octet
