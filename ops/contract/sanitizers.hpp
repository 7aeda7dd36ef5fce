// Which sanitizer this translation unit is built with, for g++ (which defines __SANITIZE_ADDRESS__ and
// __SANITIZE_THREAD__) and clang (which answers __has_feature instead) alike.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define QUARKS_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QUARKS_ADDRESS_SANITIZER 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define QUARKS_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define QUARKS_THREAD_SANITIZER 1
#endif
#endif

namespace quarks::detail {

#if defined(QUARKS_ADDRESS_SANITIZER)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#if defined(QUARKS_THREAD_SANITIZER)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

}  // namespace quarks::detail
