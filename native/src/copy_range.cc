#include "copy_range.h"

#include <algorithm>
#include <cerrno>

#include "aligned_buffer.h"
#include "sys_error.h"

namespace sm {

static void checkCancel(const CopyOptions& o, const std::string& path) {
  if (o.cancel && __atomic_load_n(o.cancel, __ATOMIC_ACQUIRE) != 0) throw SysError(ECANCELED, "copy_range", path);
}

static void hashZeros(Xxh64& hash, uint64_t n) {
  static const char zeros[64 << 10] = {};
  while (n > 0) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof zeros));
    hash.update(zeros, k);
    n -= k;
  }
}

CopyResult copyRange(File& src, File* dst, uint64_t srcOff, uint64_t dstOff, uint64_t length, const CopyOptions& o) {
  CopyResult r;
  uint64_t size = src.stat().size;
  uint64_t end = length == kToEof || srcOff + length > size ? size : srcOff + length;
  if (srcOff >= end) return r;
  std::vector<Extent> extents = o.sparse ? src.dataExtents(srcOff, end) : std::vector<Extent>{{srcOff, end - srcOff}};

  size_t alignment = std::max(src.alignment(), dst ? dst->alignment() : 1);
  bool direct = src.direct() || (dst && dst->direct());
  size_t wanted = o.bufferSize ? o.bufferSize : direct ? (8 << 20) : (256 << 10);
  size_t bufSize = std::max<size_t>(wanted & ~(alignment - 1), alignment);
  AlignedBuffer buf(bufSize, alignment);

  uint64_t pos = srcOff;  // everything before pos is hashed
  for (const Extent& e : extents) {
    if (o.hash && e.offset > pos) hashZeros(*o.hash, e.offset - pos);
    pos = e.offset;
    uint64_t stop = e.offset + e.length;
    while (pos < stop) {
      checkCancel(o, src.path());
      size_t want = static_cast<size_t>(std::min<uint64_t>(bufSize, stop - pos));
      size_t n = src.read(buf.data(), want, pos);
      if (n == 0) {
        // The file shrank under us: report it instead of pretending the range was copied.
        throw SysError(ENODATA, "read", src.path());
      }
      if (o.hash) o.hash->update(buf.data(), n);
      if (dst) dst->write(buf.data(), n, dstOff + (pos - srcOff));
      pos += n;
      r.dataBytes += n;
    }
  }
  if (o.hash && end > pos) hashZeros(*o.hash, end - pos);
  r.bytes = end - srcOff;
  return r;
}

}  // namespace sm
