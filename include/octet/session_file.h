// Session files (`octet run --session F`): a KvSnapshot on disk, so a long prompt prefix is
// prefilled once. Format (little-endian, version 1; docs/decode.md "Session files"):
//   "OCTSESS\0", u32 version, u64 model file size, u64 model fingerprint (FNV-1a of the GGUF
//   header and 64 bytes every MiB of tensor data), i64 n_embd, n_layer, n_head_kv, head_dim,
//   sliding_window, u32 KV type, i64 window_first, u64 n_tokens, i32 tokens[n],
//   then six arrays (u64 count + data): k, v (f32), kq, vq (bytes), k_scale, v_scale (f32),
//   and a u64 FNV-1a of everything before it.
// Anything that does not match this model (or is truncated / corrupted) is an error.
#pragma once
#include <cstdint>
#include <string>

#include "octet/model.h"
#include "octet/runtime.h"
#include "octet/status.h"

namespace octet {

uint64_t model_fingerprint(const Model& m);
Status save_session_file(const std::string& path, const Model& m, const KvSnapshot& snap);
Expected<KvSnapshot> load_session_file(const std::string& path, const Model& m);

}  // namespace octet
