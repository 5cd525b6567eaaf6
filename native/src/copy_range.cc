#include "copy_range.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "aligned_buffer.h"
#include "sys_error.h"

namespace sm {

static void checkCancel(const CopyOptions& o, const std::string& path) {
  if (o.cancel && __atomic_load_n(o.cancel, __ATOMIC_ACQUIRE) != 0) throw SysError(ECANCELED, "copy_range", path);
}

// Holes read as zeros and are hashed as such; a hole can be terabytes, so cancel is honoured here too.
static void hashZeros(Xxh64& hash, uint64_t n, const CopyOptions& o, const std::string& path) {
  static const char zeros[64 << 10] = {};
  for (uint64_t i = 0; n > 0; i++) {
    if (i % 1024 == 0) checkCancel(o, path);
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof zeros));
    hash.update(zeros, k);
    n -= k;
  }
}

// Waits until the shared budget allows n more bytes (see CopyOptions::budget).
static void takeBudget(const CopyOptions& o, size_t n, const std::string& path) {
  if (!o.budget) return;
  if (__atomic_sub_fetch(o.budget, static_cast<int64_t>(n), __ATOMIC_ACQ_REL) >= 0) return;
  while (__atomic_load_n(o.budget, __ATOMIC_ACQUIRE) < 0) {
    checkCancel(o, path);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

// One buffer per thread (and a second for writeChanges), kept and reused: a worker copying
// 100,000 small files must not map and unmap a buffer for each, and the memory in use stays
// threads x the largest buffer.
static char* threadBuffer(size_t size, size_t alignment, int slot = 0) {
  thread_local std::unique_ptr<AlignedBuffer> bufs[2];
  std::unique_ptr<AlignedBuffer>& buf = bufs[slot];
  if (!buf || buf->size() < size || reinterpret_cast<uintptr_t>(buf->data()) % alignment != 0)
    buf = std::make_unique<AlignedBuffer>(size, alignment);
  return buf->data();
}

// Writes data (n bytes at off) into dst where dst does not hold it already, block by block
// (runs of differing blocks in one write); returns the bytes left as they were. Blocks are
// counted from off, which callers keep block-aligned (whole files, chunks of MiBs).
static uint64_t writeChanged(File& dst, const char* data, size_t n, uint64_t off, char* held) {
  constexpr size_t kBlock = 4096;
  size_t have = dst.read(held, n, off);  // fewer at dst's end
  auto same = [&](size_t at) {
    size_t len = std::min(kBlock, n - at);
    return at + len <= have && memcmp(data + at, held + at, len) == 0;
  };
  uint64_t kept = 0;
  for (size_t i = 0; i < n;) {
    if (same(i)) {
      size_t len = std::min(kBlock, n - i);
      kept += len;
      i += len;
      continue;
    }
    size_t j = i + kBlock;
    while (j < n && !same(j)) j += kBlock;
    j = std::min(j, n);
    dst.write(data + i, j - i, off + i);
    i = j;
  }
  return kept;
}

// Hashes a buffer on a helper thread while the caller writes the same buffer, so that on a
// large copy the hash costs no time of its own (both only read the buffer). One helper per
// copying thread; it exits after a second without work, so nothing lingers after a run.
class OverlappedHash {
 public:
  ~OverlappedHash() {
    std::unique_lock<std::mutex> lock(mutex_);
    stop_ = true;
    wake_.notify_all();
    lock.unlock();
    if (thread_.joinable()) thread_.join();
  }

  void start(Xxh64* hash, const char* data, size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    hash_ = hash, data_ = data, n_ = n, pending_ = true;
    if (!running_) {
      if (thread_.joinable()) thread_.join();  // one that exited idle
      running_ = true;
      thread_ = std::thread([this] { loop(); });
    }
    wake_.notify_all();
  }

  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return !pending_; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      if (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return pending_ || stop_; }) || stop_) break;
      lock.unlock();
      hash_->update(data_, n_);
      lock.lock();
      pending_ = false;
      done_.notify_all();
    }
    running_ = false;
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::thread thread_;
  Xxh64* hash_ = nullptr;
  const char* data_ = nullptr;
  size_t n_ = 0;
  bool pending_ = false, running_ = false, stop_ = false;
};

// Overlap pays on large O_DIRECT transfers; for small buffered ones the hand-off costs more.
constexpr size_t kOverlapMin = 1 << 20;

CopyResult copyRange(File& src, File* dst, uint64_t srcOff, uint64_t dstOff, uint64_t length, const CopyOptions& o) {
  CopyResult r;
  uint64_t size = o.knownSize ? o.knownSize : src.stat().size;
  uint64_t end = length == kToEof || srcOff + length > size ? size : srcOff + length;
  if (srcOff >= end) return r;
  std::vector<Extent> extents =
      o.sparse && !o.writeChanges ? src.dataExtents(srcOff, end) : std::vector<Extent>{{srcOff, end - srcOff}};

  size_t alignment = std::max(src.alignment(), dst ? dst->alignment() : 1);
  bool direct = src.direct() || (dst && dst->direct());
  size_t wanted = o.bufferSize ? o.bufferSize : direct ? (8 << 20) : (256 << 10);
  size_t bufSize = std::max<size_t>(wanted & ~(alignment - 1), alignment);
  char* buf = threadBuffer(bufSize, alignment);
  char* held = dst && o.writeChanges ? threadBuffer(bufSize, alignment, 1) : nullptr;

  uint64_t pos = srcOff;  // everything before pos is hashed
  for (const Extent& e : extents) {
    if (o.hash && e.offset > pos) hashZeros(*o.hash, e.offset - pos, o, src.path());
    pos = e.offset;
    uint64_t stop = e.offset + e.length;
    while (pos < stop) {
      checkCancel(o, src.path());
      size_t want = static_cast<size_t>(std::min<uint64_t>(bufSize, stop - pos));
      takeBudget(o, want, src.path());
      size_t n = src.read(buf, want, pos);
      if (n == 0) {
        // The file shrank under us: report it instead of pretending the range was copied.
        throw SysError(ENODATA, "read", src.path());
      }
      if (held) {
        if (o.hash) o.hash->update(buf, n);
        takeBudget(o, n, src.path());  // the clone's bytes are read too: --bwlimit counts them
        r.sharedBytes += writeChanged(*dst, buf, n, dstOff + (pos - srcOff), held);
      } else if (o.hash && dst && n >= kOverlapMin) {
        thread_local OverlappedHash overlapped;
        overlapped.start(o.hash, buf, n);
        try {
          dst->write(buf, n, dstOff + (pos - srcOff));
        } catch (...) {
          overlapped.wait();  // the helper must be done with buf before anything reuses it
          throw;
        }
        overlapped.wait();
      } else {
        if (o.hash) o.hash->update(buf, n);
        if (dst) dst->write(buf, n, dstOff + (pos - srcOff));
      }
      pos += n;
      r.dataBytes += n;
    }
  }
  if (o.hash && end > pos) hashZeros(*o.hash, end - pos, o, src.path());
  r.bytes = end - srcOff;
  return r;
}

}  // namespace sm
