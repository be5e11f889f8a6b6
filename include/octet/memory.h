// Memory accounting for reports (`octet bench`, `octet run -v`, docs/memory.md): the
// process's own counters from /proc, and what each part of the engine holds.
#pragma once
#include <cstddef>
#include <string>

namespace octet {

// From /proc/self/status and /proc/self/smaps (Linux; zeros elsewhere).
struct ProcMemory {
  size_t rss = 0;            // VmRSS: resident now
  size_t peak_rss = 0;       // VmHWM: high-water mark of the resident set
  size_t rss_anon = 0;       // RssAnon: heap, stacks, anonymous mappings
  size_t rss_file = 0;       // RssFile: resident pages of mapped files
  size_t file_resident = 0;  // Rss of the mappings of `path` (when given)
};
ProcMemory proc_memory(const std::string& path = "");

// Drops the resident pages of [p, p + n) of a read-only FILE mapping from this process
// (madvise MADV_DONTNEED on the whole pages inside the range): they stop counting in RSS and
// fault back in from the page cache if read again. Used once a tensor has been copied into
// int8/float form. Never call it on anonymous memory (that would zero it).
void release_file_pages(const void* p, size_t n);
// Maps [p, p + n) of a read-only file mapping in now (MADV_POPULATE_READ, else a read per
// page), so that its first use does not take thousands of page faults: for a tensor every
// request reads whole (the LM head used in place), at load instead of in the first request.
void populate_file_pages(const void* p, size_t n);

// Bytes a Weights object holds, by kind (all heap except gguf_mapped).
struct WeightBytes {
  size_t int8 = 0;          // packed int8 linears of the layers + scales/column sums
  size_t int8_lm_head = 0;  // the int8 LM head (Gemma 3 270M: 262144 x 640)
  size_t hot_float = 0;     // float columns (+ index) of hot input channels
  size_t f32 = 0;           // FP32 packed linears (fp32 mode, or slots forced to float)
  size_t small = 0;         // norms, biases
  size_t q4_index = 0;      // row pointers + column offsets of linears whose prefill GEMM
                            // reads the file's blocks (Int8Options::q4_gemm)
  size_t gguf_mapped = 0;   // GGUF tensors read in place (file pages): file LM head, decode linears
  size_t heap() const { return int8 + int8_lm_head + hot_float + f32 + small + q4_index; }
  // Not bytes: multiply-adds per token of the layers' int8 linears, and of those the ones
  // whose prefill GEMM reads the file's blocks (their ratio: what --q4-gemm reaches).
  size_t int8_macs = 0, q4_macs = 0;
};

}  // namespace octet
