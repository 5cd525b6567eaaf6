// Moves a byte range from one file to another and hashes it on the way, in C++ only, so a
// large copy never passes through JS memory.
#pragma once
#include <atomic>
#include <cstdint>

#include "file.h"
#include "xxh64.h"

namespace sm {

constexpr uint64_t kToEof = UINT64_MAX;

struct CopyOptions {
  // 0 = automatic: 8 MiB when either side is O_DIRECT (large requests keep the device busy),
  // 256 KiB for buffered I/O, whose data is copied out of the page cache anyway: a buffer
  // that stays in the CPU cache then halves memory traffic (hashing ran 0.86x -> 1.2x xxhsum).
  size_t bufferSize = 0;
  // Skip the source's holes (SEEK_DATA/SEEK_HOLE): they are hashed as the zeros they read as
  // but never written, so the destination keeps them as holes. The caller sizes the
  // destination (ftruncate) so that a trailing hole exists.
  bool sparse = false;
  Xxh64* hash = nullptr;            // updated with every byte of the range, holes included
  const int32_t* cancel = nullptr;  // nonzero (read atomically) stops with ECANCELED
  // A token bucket shared by every copy of a run (--bwlimit): bytes that may still be read. Each
  // buffer takes its size from it and waits while it is negative; JS refills it on a timer.
  int64_t* budget = nullptr;
  // The source's size when the caller has just stat'ed it (saves a statx per file); 0 = ask.
  uint64_t knownSize = 0;
  // dst already holds an earlier version of the data, sharing its blocks with it (a reflink
  // clone): each block read is compared with dst's and only those that differ are written, so
  // the others stay shared. sparse is then ignored (a hole left unwritten would keep dst's data).
  bool writeChanges = false;
};

struct CopyResult {
  uint64_t bytes = 0;        // bytes of the range (up to end of file)
  uint64_t dataBytes = 0;    // bytes read; bytes - dataBytes were holes
  uint64_t sharedBytes = 0;  // with writeChanges: bytes dst already held, left unwritten (shared, or holes)
};

// Copies [srcOff, srcOff + length) of src to dstOff in dst; length kToEof means to end of
// file. dst may be null: the range is then only read and hashed (verification).
CopyResult copyRange(File& src, File* dst, uint64_t srcOff, uint64_t dstOff, uint64_t length,
                     const CopyOptions& options);

}  // namespace sm
