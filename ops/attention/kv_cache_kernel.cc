// kv_cache_append (see kv_cache_kernel.hpp): row copies.
#include "ops/attention/kv_cache_kernel.hpp"

#include <cstring>

#include "ops/contract/parallel.hpp"

namespace quarks::ops {

void kv_cache_append(const KvAppendConfig& c, const float* src, float* cache, std::int64_t past) {
  const std::int64_t dim = c.head_dim, rows = c.batch * c.kv_heads * c.new_len;
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(float);
  // Rows in cache order (b, h, s): each task writes one contiguous stretch of the cache.
  detail::parallel_blocks(rows, detail::row_grain(dim), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const std::int64_t s = r % c.new_len, bh = r / c.new_len;
      const std::int64_t b = bh / c.kv_heads, h = bh % c.kv_heads;
      const float* from = c.head_major ? src + r * dim : src + ((b * c.new_len + s) * c.kv_heads + h) * dim;
      std::memcpy(cache + (bh * c.max_len + past + s) * dim, from, row_bytes);
    }
  });
}

}  // namespace quarks::ops
