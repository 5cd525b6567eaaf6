#include "aligned_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>

#include "sys_error.h"

namespace sm {

void* allocAligned(size_t size, size_t alignment) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) throw SysError(EINVAL, "posix_memalign", "");
  bool huge = size >= kHugePage;
  if (huge && alignment < kHugePage) alignment = kHugePage;
  void* p = nullptr;
  int rc = posix_memalign(&p, alignment, size ? size : alignment);
  if (rc != 0) throw SysError(rc, "posix_memalign", "");
  // Advice only: a kernel without transparent huge pages still gives a working buffer.
  if (huge) madvise(p, size, MADV_HUGEPAGE);
  return p;
}

void freeAligned(void* p) { free(p); }

}  // namespace sm
