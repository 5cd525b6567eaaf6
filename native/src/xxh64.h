// Streaming XXH64 (the digest `xxhsum -H1` prints), from Debian's libxxhash header, inlined.
#pragma once
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstdio>
#include <string>

namespace sm {

class Xxh64 {
 public:
  explicit Xxh64(uint64_t seed = 0) { XXH64_reset(&state_, seed); }
  void update(const void* data, size_t len) { XXH64_update(&state_, data, len); }
  uint64_t digest() const { return XXH64_digest(&state_); }
  // 16 lowercase hex digits, as xxhsum and xxhash-wasm's h64ToString print them.
  static std::string hex(uint64_t d) {
    char out[17];
    snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(d));
    return out;
  }

 private:
  XXH64_state_t state_;
};

}  // namespace sm
