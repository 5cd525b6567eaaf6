// Memory aligned for O_DIRECT.
#pragma once
#include <cstddef>

namespace sm {

constexpr size_t kHugePage = 2 << 20;

// Allocates `size` bytes aligned to `alignment` (a power of two, >= sizeof(void*)).
// Buffers of 2 MiB and more are aligned to 2 MiB and marked MADV_HUGEPAGE: a virtual disk
// takes a limited number of segments per request, so physically contiguous buffers make
// O_DIRECT reads ~3x faster than 4 KiB-aligned ones (see shared/FACTS.md).
// Throws SysError on failure. Free with freeAligned.
void* allocAligned(size_t size, size_t alignment);
void freeAligned(void* p);

// RAII owner for the buffers the C++ side uses internally.
class AlignedBuffer {
 public:
  AlignedBuffer(size_t size, size_t alignment) : data_(allocAligned(size, alignment)), size_(size) {}
  ~AlignedBuffer() { freeAligned(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  char* data() const { return static_cast<char*>(data_); }
  size_t size() const { return size_; }

 private:
  void* data_;
  size_t size_;
};

}  // namespace sm
