// The AVX512_BF16 form of gemv_bf16 (gemv_bf16_simd.hpp): x rounded to bf16 once per call, each weight
// vector multiplied into it with vdpbf16ps — 32 products, exact in f32, summed in pairs into 16 f32
// lanes — one instruction where widening takes four. Decode streams the weights from memory, and the
// fewer instructions let the core keep more of them in flight (a single thread on Zen 5, 512 MiB of
// weights: 33.5 against 23.8 GB/s widening; plain reading reaches 35.6).
//
// Rows that start at the same offset within a vector are read with aligned loads, as in the widening
// kernel: each block starts `a` elements before its row, and lanes outside the row are zeroed (the
// neighbouring rows' weights may be anything; x is zero there too, but 0 · NaN is NaN).
// GCC 12 warns, wrongly, that the reductions of avx512fintrin.h read an uninitialised vector.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#include "ops/dense/gemv_bf16_simd.hpp"

namespace quarks::ops::dense_detail {
namespace {

constexpr std::size_t kBlock = 32;  // bf16 elements per vector

#define QUARKS_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

std::uint16_t round_to_bf16(float f) {  // round to nearest even; NaN stays a (quiet) NaN
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// Block b of row r holds x[r, b·32 - a + e] for e < 32, rounded to bf16; zero outside [0, k).
QUARKS_BF16_TARGET void prepare_x(const float* x, std::size_t m, std::size_t k, std::size_t a, std::size_t blocks,
                                  std::uint16_t* xs) {
  for (std::size_t r = 0; r < m; ++r) {
    const float* xr = x + r * k;
    std::uint16_t* out = xs + r * blocks * kBlock;
    std::size_t b = 0;
    // Blocks whose 32 elements all lie in [0, k) convert 16 at a time; the first and the last, scalar.
    for (; b < blocks; ++b) {
      const std::ptrdiff_t p0 = static_cast<std::ptrdiff_t>(b * kBlock) - static_cast<std::ptrdiff_t>(a);
      if (p0 >= 0 && static_cast<std::size_t>(p0) + kBlock <= k) {
        const float* src = xr + p0;
        const __m256bh lo = _mm512_cvtneps_pbh(_mm512_loadu_ps(src));
        const __m256bh hi = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + 16));
        std::memcpy(out + b * kBlock, &lo, sizeof lo);
        std::memcpy(out + b * kBlock + 16, &hi, sizeof hi);
        continue;
      }
      for (std::size_t e = 0; e < kBlock; ++e) {
        const std::ptrdiff_t p = p0 + static_cast<std::ptrdiff_t>(e);
        out[b * kBlock + e] = p >= 0 && static_cast<std::size_t>(p) < k ? round_to_bf16(xr[p]) : std::uint16_t{0};
      }
    }
  }
}

// acc[r][u] += the products of weight vector v with block b of each row r of x.
template <std::size_t M, std::size_t U>
QUARKS_BF16_TARGET inline void dot_step(__m512 (&acc)[M][U], const std::uint16_t* xs, std::size_t blocks, std::size_t b,
                                        std::size_t u, __m512i v) {
  for (std::size_t r = 0; r < M; ++r) {
    const __m512i xv = _mm512_loadu_si512(xs + (r * blocks + b) * kBlock);
    acc[r][u] = _mm512_dpbf16_ps(acc[r][u], (__m512bh)v, (__m512bh)xv);
  }
}

// One weight row against M rows of x, U independent accumulators per row of x (M·U chains in flight).
template <std::size_t M>
QUARKS_BF16_TARGET void dot_row(const std::uint16_t* xs, std::size_t blocks, const std::uint16_t* w, float* y,
                                std::size_t ldy, __mmask32 head, __mmask32 tail) {
  constexpr std::size_t U = M == 1 ? 4 : M == 2 ? 2 : 1;
  __m512 acc[M][U];
  for (std::size_t r = 0; r < M; ++r)
    for (std::size_t u = 0; u < U; ++u) acc[r][u] = _mm512_setzero_ps();
  dot_step<M, U>(acc, xs, blocks, 0, 0, _mm512_maskz_loadu_epi16(blocks == 1 ? head & tail : head, w));
  if (blocks > 1) {
    std::size_t b = 1;
    for (; b + U <= blocks - 1; b += U)
      for (std::size_t u = 0; u < U; ++u)
        dot_step<M, U>(acc, xs, blocks, b + u, u, _mm512_loadu_si512(w + (b + u) * kBlock));
    for (; b < blocks - 1; ++b) dot_step<M, U>(acc, xs, blocks, b, 0, _mm512_loadu_si512(w + b * kBlock));
    dot_step<M, U>(acc, xs, blocks, blocks - 1, 0, _mm512_maskz_loadu_epi16(tail, w + (blocks - 1) * kBlock));
  }
  for (std::size_t r = 0; r < M; ++r) {
    __m512 s = acc[r][0];
    for (std::size_t u = 1; u < U; ++u) s = _mm512_add_ps(s, acc[r][u]);
    y[r * ldy] = _mm512_reduce_add_ps(s);
  }
}

template <std::size_t M>
QUARKS_BF16_TARGET void dot_rows(const std::uint16_t* xs, std::size_t blocks, const std::uint16_t* w, std::size_t ldw,
                                 std::size_t rows, float* y, std::size_t ldy, __mmask32 head, __mmask32 tail) {
  for (std::size_t j = 0; j < rows; ++j) dot_row<M>(xs, blocks, w + j * ldw, y + j, ldy, head, tail);
}

}  // namespace

bool cpu_has_avx512_bf16() noexcept {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  return has;
}

QUARKS_BF16_TARGET void gemv_bf16_dot(const float* x, std::size_t m, std::size_t k, const std::uint16_t* w,
                                      std::size_t ldw, std::size_t rows, float* y, std::size_t ldy, float* scratch,
                                      bool /*read_before*/, bool /*read_after*/) {
  if (m == 0 || m > kGemvMaxRows || rows == 0) return;
  // Elements of each row before its vector-aligned block start; 0 (unaligned loads) when rows differ.
  const std::size_t a = ldw % kBlock == 0 ? (reinterpret_cast<std::uintptr_t>(w) % (kBlock * sizeof(std::uint16_t))) /
                                                sizeof(std::uint16_t)
                                          : 0;
  // Masked lanes of AVX-512 loads never fault, so unlike the widening form every row, the matrix's
  // first and last included, runs the vector loop: the bytes around the buffer are never touched.
  const std::size_t blocks = (k + a + kBlock - 1) / kBlock;
  const std::size_t past = blocks * kBlock - a - k;  // elements after each row in its last block
  const __mmask32 head = ~__mmask32{0} << a;
  const __mmask32 tail = ~__mmask32{0} >> past;
  auto* xs = reinterpret_cast<std::uint16_t*>(scratch);  // m·blocks·32 bf16 fit in m·(k + 128) floats
  prepare_x(x, m, k, a, blocks, xs);
  w -= a;
  switch (m) {
    case 1: return dot_rows<1>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 2: return dot_rows<2>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 3: return dot_rows<3>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 4: return dot_rows<4>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 5: return dot_rows<5>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 6: return dot_rows<6>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 7: return dot_rows<7>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    case 8: return dot_rows<8>(xs, blocks, w, ldw, rows, y, ldy, head, tail);
    default: return;
  }
}

}  // namespace quarks::ops::dense_detail
