// KV cache append: copies one run's new keys (or values) into rows [past, past + new_len) of a cache laid
// out [B, Hkv, max_len, D], touching nothing else. The cache itself lives in a Session's state memory
// (engine/session.cc); the op that calls this is kv_cache_append (kv_cache_ops.cc).
#pragma once

#include <cstdint>

namespace quarks::ops {

struct KvAppendConfig {
  std::int64_t batch = 0, kv_heads = 1, head_dim = 1;  ///< B >= 0, Hkv >= 1, D >= 1
  std::int64_t new_len = 0;                            ///< S_new >= 0: rows appended per (batch, head)
  std::int64_t max_len = 0;                            ///< rows the cache holds per (batch, head)
  bool head_major = false;                             ///< src is [B, Hkv, S_new, D]; else [B, S_new, Hkv·D]
};

/// cache[b, h, past + s, :] = src[b, s, h, :] (or src[b, h, s, :]) for s < new_len. Needs 0 <= past and
/// past + new_len <= max_len (the caller checks). Splits the rows over the calling TBB arena.
void kv_cache_append(const KvAppendConfig& config, const float* src, float* cache, std::int64_t past);

}  // namespace quarks::ops
