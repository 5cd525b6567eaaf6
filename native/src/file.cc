#include "file.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "sys_error.h"

namespace sm {

FileStat fromStatx(const struct statx& s) {
  FileStat st{};
  st.dev = makedev(s.stx_dev_major, s.stx_dev_minor);
  st.rdev = makedev(s.stx_rdev_major, s.stx_rdev_minor);
  st.ino = s.stx_ino;
  st.size = s.stx_size;
  st.blocks = s.stx_blocks;
  st.mode = s.stx_mode;
  st.nlink = s.stx_nlink;
  st.uid = s.stx_uid;
  st.gid = s.stx_gid;
  st.blksize = s.stx_blksize;
  st.atimeSec = s.stx_atime.tv_sec, st.atimeNsec = s.stx_atime.tv_nsec;
  st.mtimeSec = s.stx_mtime.tv_sec, st.mtimeNsec = s.stx_mtime.tv_nsec;
  st.ctimeSec = s.stx_ctime.tv_sec, st.ctimeNsec = s.stx_ctime.tv_nsec;
  if (s.stx_mask & STATX_BTIME) st.btimeSec = s.stx_btime.tv_sec, st.btimeNsec = s.stx_btime.tv_nsec;
  return st;
}

static bool statxInto(int dirfd, const std::string& path, int flags, FileStat& st) {
  struct statx s;
  if (statx(dirfd, path.c_str(), flags, STATX_BASIC_STATS | STATX_BTIME, &s) != 0) return false;
  st = fromStatx(s);
  return true;
}

static FileStat doStatx(int dirfd, const std::string& path, int flags, const std::string& errPath) {
  FileStat st;
  if (!statxInto(dirfd, path, flags, st)) throwErrno("statx", errPath);
  return st;
}

FileStat statPath(const std::string& path, bool follow) {
  return doStatx(AT_FDCWD, path, follow ? 0 : AT_SYMLINK_NOFOLLOW, path);
}

bool lstatAt(int dirfd, const std::string& name, FileStat& st) {
  return statxInto(dirfd, name, AT_SYMLINK_NOFOLLOW, st);
}

File::File(const std::string& path, const OpenOptions& o)
    : path_(o.shownAs.empty() ? path : o.shownAs), accessFlags_(o.flags & O_ACCMODE), alignment_(o.alignment) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) throw SysError(EINVAL, "open", path);
  int flags = o.flags | O_CLOEXEC;
  if (o.direct) {
    fd_ = ::open(path.c_str(), flags | O_DIRECT, o.mode);
    if (fd_ >= 0) {
      direct_ = true;
    } else if (errno != EINVAL) {
      throwErrno("open", path_);
    } else {
      // The kernel creates the file before it refuses O_DIRECT: O_EXCL would now fail.
      flags &= ~O_EXCL;
    }
    dropCache_ = true;
  }
  if (fd_ < 0) {
    fd_ = ::open(path.c_str(), flags, o.mode);
    if (fd_ < 0) throwErrno("open", path_);
  }
}

void File::linkAs(const std::string& path) {
  std::string self = "/proc/self/fd/" + std::to_string(fd_);
  if (linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) != 0) throwErrno("linkat", path);
}

File::Clone File::cloneFrom(const std::string& base) {
  int b = ::open(base.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (b < 0) return Clone::NoBase;
  struct stat st;
  Clone c = fstat(b, &st) == 0 && S_ISREG(st.st_mode) ? cloneFromFd(b) : Clone::NoBase;
  ::close(b);
  return c;
}

File::Clone File::cloneFrom(const File& base) { return cloneFromFd(base.fd()); }

File::Clone File::cloneFromFd(int base) {
  if (ioctl(fd_, FICLONE, base) == 0) return Clone::Cloned;
  int err = errno;
  // A clone that failed partway (ENOSPC, say) may have left part of base here: gone again, so
  // the caller's plain copy starts from an empty file, as it would have without the attempt.
  if (ftruncate(fd_, 0) != 0) throwErrno("ftruncate", path_);
  // EINVAL is about these files (Btrfs nodatacow, an immutable one...), not the file system.
  return err == EOPNOTSUPP || err == ENOTTY || err == EXDEV || err == ENOSYS ? Clone::Unsupported : Clone::NoBase;
}

File::~File() {
  if (bufferedFd_ >= 0) ::close(bufferedFd_);
  if (fd_ >= 0) ::close(fd_);
}

void File::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  int b = bufferedFd_, f = fd_;
  bufferedFd_ = fd_ = -1;
  if (b >= 0) ::close(b);
  if (f >= 0 && ::close(f) != 0) throwErrno("close", path_);
}

bool File::isAligned(const void* buf, size_t len, uint64_t off) const {
  uint64_t mask = alignment_ - 1;
  return ((reinterpret_cast<uintptr_t>(buf) | len | off) & mask) == 0;
}

// Counts a finished transfer; a buffered one is then pushed out of the page cache when the
// caller asked for direct I/O (DONTNEED cannot drop dirty pages, so start writeback first).
// Both calls are advice: their failures are harmless.
void File::transferred(int fd, uint64_t off, size_t n, bool direct, bool written) {
  if (n == 0) return;
  if (direct) {
    directBytes_ += n;
    return;
  }
  bufferedBytes_ += n;
  if (!dropCache_) return;
  if (written) sync_file_range(fd, off, n, SYNC_FILE_RANGE_WRITE);
  posix_fadvise(fd, off, n, POSIX_FADV_DONTNEED);
}

size_t File::transferOnce(bool write, int fd, void* buf, size_t len, uint64_t off, bool direct) {
  for (;;) {
    ssize_t n =
        write ? ::pwrite(fd, buf, len, static_cast<off_t>(off)) : ::pread(fd, buf, len, static_cast<off_t>(off));
    if (n > 0 || (n == 0 && !write)) {
      transferred(fd, off, n, direct, write);
      return static_cast<size_t>(n);
    }
    if (n == 0) throw SysError(EIO, "write", path_);  // no progress: never spin
    if (errno != EINTR) throwErrno(write ? "write" : "read", path_);
  }
}

// An unaligned piece on a direct file goes through a second descriptor on the same inode
// (/proc/self/fd/N: not the path, which may have been renamed) opened without O_DIRECT. Where
// that reopen is refused (a file created read-only, e.g. mode 0444, by a non-root user), the
// piece is done on the one descriptor with O_DIRECT cleared for its duration.
size_t File::transferBuffered(bool write, void* buf, size_t len, uint64_t off) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (fd_ < 0) throw SysError(EBADF, write ? "write" : "read", path_);
  if (bufferedFd_ < 0 && !reopenRefused_) {
    std::string self = "/proc/self/fd/" + std::to_string(fd_);
    bufferedFd_ = ::open(self.c_str(), accessFlags_ | O_CLOEXEC);
    if (bufferedFd_ < 0 && errno != EACCES && errno != EPERM) throwErrno("open", path_);
    reopenRefused_ = bufferedFd_ < 0;
  }
  if (!reopenRefused_) {
    int fd = bufferedFd_;
    lock.unlock();
    return transferOnce(write, fd, buf, len, off, false);
  }
  int flags = fcntl(fd_, F_GETFL);
  if (flags < 0 || fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) throwErrno("fcntl", path_);
  try {
    size_t n = transferOnce(write, fd_, buf, len, off, false);
    fcntl(fd_, F_SETFL, flags);
    return n;
  } catch (...) {
    fcntl(fd_, F_SETFL, flags);
    throw;
  }
}

// Direct for the aligned head of a request, buffered for an unaligned remainder.
size_t File::transfer(bool write, void* buf, size_t len, uint64_t off) {
  if (!direct_) {
    if (fd_ < 0) throw SysError(EBADF, write ? "write" : "read", path_);
    return transferOnce(write, fd_, buf, len, off, false);
  }
  size_t head = len & ~(alignment_ - 1);
  if (head > 0 && isAligned(buf, head, off)) {
    if (fd_ < 0) throw SysError(EBADF, write ? "write" : "read", path_);
    return transferOnce(write, fd_, buf, head, off, true);
  }
  return transferBuffered(write, buf, len, off);
}

size_t File::read(void* buf, size_t len, uint64_t off) {
  char* p = static_cast<char*>(buf);
  size_t done = 0;
  while (done < len) {
    size_t n = transfer(false, p + done, len - done, off + done);
    if (n == 0) break;  // end of file
    done += n;
  }
  return done;
}

void File::write(const void* buf, size_t len, uint64_t off) {
  // pwrite does not modify the buffer; one code path serves both directions.
  char* p = const_cast<char*>(static_cast<const char*>(buf));
  for (size_t done = 0; done < len;) done += transfer(true, p + done, len - done, off + done);
}

std::vector<Extent> File::dataExtents(uint64_t start, uint64_t end) {
  std::vector<Extent> out;
  uint64_t pos = start;
  while (pos < end) {
    off_t data = lseek(fd_, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole up to end of file
      if (errno == EINVAL || errno == EOPNOTSUPP) return {{start, end - start}};
      throwErrno("lseek", path_);
    }
    if (static_cast<uint64_t>(data) >= end) break;
    off_t hole = lseek(fd_, data, SEEK_HOLE);
    if (hole < 0) throwErrno("lseek", path_);
    uint64_t stop = std::min<uint64_t>(static_cast<uint64_t>(hole), end);
    out.push_back({static_cast<uint64_t>(data), stop - static_cast<uint64_t>(data)});
    pos = stop;
  }
  return out;
}

void File::fsync() {
  if (::fsync(fd_) != 0) throwErrno("fsync", path_);
}

void File::fdatasync() {
  if (::fdatasync(fd_) != 0) throwErrno("fdatasync", path_);
}

void File::syncfs() {
  if (::syncfs(fd_) != 0) throwErrno("syncfs", path_);
}

void File::truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) throwErrno("ftruncate", path_);
}

void File::allocate(uint64_t off, uint64_t len) {
  if (::fallocate(fd_, 0, static_cast<off_t>(off), static_cast<off_t>(len)) != 0) throwErrno("fallocate", path_);
}

void File::punchHole(uint64_t off, uint64_t len) {
  if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off), static_cast<off_t>(len)) !=
      0)
    throwErrno("fallocate", path_);
}

FileStat File::stat() { return doStatx(fd_, "", AT_EMPTY_PATH, path_); }

}  // namespace sm
