// pread/pwrite defined by the test executable itself, so the core's calls (linked into the
// same executable) reach these first. Off by default: then they only forward to the real
// functions. Switched on, they inject the failures the core must survive: EINTR on the first
// call (and every 7th) and short transfers on the others.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

namespace interpose {

enum class Mode {
  Off,
  // Really transfer fewer bytes: half (at least 1) on buffered descriptors; half rounded down
  // to 4 KiB on O_DIRECT ones (the whole request when that is 0), so the kernel accepts it.
  Short,
  // Like Short on buffered descriptors; on O_DIRECT ones transfer everything but report an
  // odd count (half + 1), which leaves the caller unaligned: it must finish buffered.
  ShortReport,
};

struct Counters {
  std::atomic<uint64_t> preadCalls{0}, pwriteCalls{0};  // interposed calls while on
  std::atomic<uint64_t> eintr{0}, shortCount{0};        // injected failures
  std::atomic<uint64_t> directCalls{0};                 // calls on O_DIRECT descriptors
};

extern Counters counters;

// Starts injecting (and counting from zero).
void start(Mode mode);
void stop();

// Called with the 1-based number of each interposed pread while on (before the failure
// injection); lets a test act in the middle of a transfer (e.g. set a cancel flag).
extern void (*onPread)(uint64_t call);

// Where the forwarding calls go, as dladdr names it: "libc.so.6", "libasan.so.8", or this
// executable when the sanitizer runtime is linked in statically (clang).
std::string realPreadOwner();
std::string realPwriteOwner();

}  // namespace interpose
