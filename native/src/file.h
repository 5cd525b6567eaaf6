// An open file for bulk transfer: O_DIRECT where the file system and the request allow it,
// buffered I/O without polluting the page cache otherwise.
#pragma once
#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace sm {

struct Extent {
  uint64_t offset;
  uint64_t length;
};

struct FileStat {
  uint64_t dev, ino, rdev, size, blocks;
  uint32_t mode, nlink, uid, gid, blksize;
  int64_t atimeSec, mtimeSec, ctimeSec, btimeSec;  // btime 0/0 when the FS does not report it
  uint32_t atimeNsec, mtimeNsec, ctimeNsec, btimeNsec;
};

struct OpenOptions {
  int flags = 0;            // O_RDONLY, O_WRONLY | O_CREAT | ..., without O_DIRECT
  mode_t mode = 0644;       // for O_CREAT
  bool direct = false;      // try O_DIRECT
  size_t alignment = 4096;  // offset/length/address alignment O_DIRECT needs (64 KiB on some arm64 Lustre clients)
  // The path errors name, when it is not the one opened: an O_TMPFILE file is opened through
  // its directory but is reported as the name it will get.
  std::string shownAs;
};

// OpenOptions for the common case, without spelling out every field.
inline OpenOptions opening(int flags, mode_t mode = 0644, bool direct = false) {
  OpenOptions o;
  o.flags = flags;
  o.mode = mode;
  o.direct = direct;
  return o;
}

class File {
 public:
  File(const std::string& path, const OpenOptions& options);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  int fd() const { return fd_; }
  // True when the primary descriptor has O_DIRECT. False when it was not asked for, or the
  // file system refused it (tmpfs answers EINVAL): then reads and writes are buffered and
  // followed by POSIX_FADV_DONTNEED so a bulk transfer does not evict the jobs' page cache.
  bool direct() const { return direct_; }
  size_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }
  // Bytes moved through the O_DIRECT descriptor and through buffered I/O: lets callers and
  // benchmarks see which path a transfer really took.
  uint64_t directBytes() const { return directBytes_.load(std::memory_order_relaxed); }
  uint64_t bufferedBytes() const { return bufferedBytes_.load(std::memory_order_relaxed); }

  // Reads up to len bytes at off; returns fewer only at end of file. Survives EINTR and
  // short transfers. Unaligned pieces (the tail of a file) go through a buffered descriptor.
  size_t read(void* buf, size_t len, uint64_t off);
  // Writes all len bytes at off, same rules.
  void write(const void* buf, size_t len, uint64_t off);

  // Data extents in [start, end), found with SEEK_DATA/SEEK_HOLE; the gaps are holes.
  // A file system without hole support reports one extent covering everything.
  std::vector<Extent> dataExtents(uint64_t start, uint64_t end);

  void fsync();
  void fdatasync();
  // Flushes the whole file system the file lives on: one call makes a batch of files durable.
  void syncfs();
  void truncate(uint64_t size);
  void allocate(uint64_t off, uint64_t len);   // fallocate; EOPNOTSUPP where unsupported
  void punchHole(uint64_t off, uint64_t len);  // deallocate without changing the size
  FileStat stat();
  void close();
  // Makes this file (empty, opened for writing) a clone of the regular file at base: its blocks
  // shared, copy on write (FICLONE; reflinks on XFS, Btrfs, ZFS 2.2, some NFS 4.2 servers).
  // Unsupported where this file system never can (or base is on another one); NoBase where
  // there is no regular file at base, or this one clone failed for another reason. A clone that
  // fails leaves the file empty.
  enum class Clone { Cloned, NoBase, Unsupported };
  Clone cloneFrom(const std::string& base);
  Clone cloneFrom(const File& base);
  // Gives a name to a file opened with O_TMPFILE (linkat through /proc/self/fd, which needs no
  // privilege). EEXIST when the name is taken.
  void linkAs(const std::string& path);

 private:
  bool isAligned(const void* buf, size_t len, uint64_t off) const;
  Clone cloneFromFd(int base);
  void transferred(int fd, uint64_t off, size_t n, bool direct, bool written);
  size_t transferOnce(bool write, int fd, void* buf, size_t len, uint64_t off, bool direct);
  size_t transferBuffered(bool write, void* buf, size_t len, uint64_t off);
  size_t transfer(bool write, void* buf, size_t len, uint64_t off);

  std::string path_;
  int fd_ = -1;
  int bufferedFd_ = -1;
  int accessFlags_;
  bool direct_ = false;
  bool dropCache_ = false;
  bool reopenRefused_ = false;
  size_t alignment_;
  std::mutex mutex_;
  std::atomic<uint64_t> directBytes_{0}, bufferedBytes_{0};
};

FileStat statPath(const std::string& path, bool follow);
// lstat of name relative to an open directory (AT_FDCWD: name is a whole path), or false when
// there is nothing to stat there: for callers to whom a missing file is an answer, not an error.
bool lstatAt(int dirfd, const std::string& name, FileStat& st);
// The kernel's statx record as a FileStat.
FileStat fromStatx(const struct statx& s);

}  // namespace sm
