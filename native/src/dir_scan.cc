#include "dir_scan.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>

#include "sys_error.h"

namespace sm {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

UniqueFd openDirAt(int parentFd, const std::string& path) {
  int fd;
  do {
    fd = ::openat(parentFd, path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throwErrno("opendir", path);
  return UniqueFd(fd);
}

// Byte order; a prefix first.
static bool nameLess(std::string_view a, std::string_view b) {
  int c = std::memcmp(a.data(), b.data(), std::min(a.size(), b.size()));
  return c < 0 || (c == 0 && a.size() < b.size());
}

DirListing listDirectory(int dirFd, const std::string& errPath) {
  if (::lseek(dirFd, 0, SEEK_SET) < 0) throwErrno("readdir", errPath);
  // Names in the order the kernel returns them, then sorted through an index.
  std::string raw;
  std::vector<uint32_t> starts{0};
  std::vector<uint64_t> inos;
  // Large reads: one round trip per ~1,500 names on NFS/Lustre. One buffer per thread, kept:
  // allocating 64 KiB per directory costs more than reading a small one (glibc consolidates its
  // free lists for every such request).
  constexpr size_t kBufSize = 64 * 1024;
  thread_local std::unique_ptr<char[]> buf(new char[kBufSize]);
  for (;;) {
    ssize_t n = ::getdents64(dirFd, buf.get(), kBufSize);
    if (n < 0) {
      if (errno == EINTR) continue;
      throwErrno("readdir", errPath);
    }
    if (n == 0) break;
    for (ssize_t pos = 0; pos < n;) {
      // The record's fields through memcpy and offsetof: no struct access into a char buffer.
      unsigned short reclen;
      uint64_t ino;
      std::memcpy(&reclen, buf.get() + pos + offsetof(struct dirent64, d_reclen), sizeof reclen);
      std::memcpy(&ino, buf.get() + pos + offsetof(struct dirent64, d_ino), sizeof ino);
      const char* name = buf.get() + pos + offsetof(struct dirent64, d_name);
      size_t len = ::strnlen(name, static_cast<size_t>(n - pos) - offsetof(struct dirent64, d_name));
      pos += reclen;
      if (reclen == 0) throw SysError(EIO, "readdir", errPath);  // never loop forever on a bad record
      if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) continue;
      if (raw.size() + len > std::numeric_limits<uint32_t>::max()) throw SysError(EOVERFLOW, "readdir", errPath);
      raw.append(name, len);
      starts.push_back(static_cast<uint32_t>(raw.size()));
      inos.push_back(ino);
    }
  }

  size_t count = inos.size();
  auto nameAt = [&](uint32_t k) { return std::string_view(raw.data() + starts[k], starts[k + 1] - starts[k]); };
  std::vector<uint32_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return nameLess(nameAt(a), nameAt(b)); });

  DirListing out;
  out.names.reserve(raw.size());
  out.offsets.reserve(count + 1);
  out.dirIno.reserve(count);
  for (uint32_t k : order) {
    out.names.append(nameAt(k));
    out.offsets.push_back(static_cast<uint32_t>(out.names.size()));
    out.dirIno.push_back(inos[k]);
  }
  return out;
}

void statEntries(int dirFd, DirListing& listing) {
  size_t count = listing.size();
  listing.stats.assign(count, FileStat{});
  listing.errs.assign(count, 0);
  std::vector<uint32_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return listing.dirIno[a] < listing.dirIno[b] || (listing.dirIno[a] == listing.dirIno[b] && a < b);
  });
  char name[NAME_MAX + 1];
  for (uint32_t i : order) {
    std::string_view n = listing.name(i);
    if (n.size() > NAME_MAX) {  // cannot come from getdents64; never overrun the buffer
      listing.errs[i] = ENAMETOOLONG;
      continue;
    }
    std::memcpy(name, n.data(), n.size());
    name[n.size()] = '\0';
    struct statx s;
    int rc;
    do {
      rc = ::statx(dirFd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &s);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) {
      listing.stats[i] = fromStatx(s);
    } else {
      listing.errs[i] = errno;
    }
  }
}

DirListing readDirectory(int dirFd, const std::string& errPath) {
  DirListing listing = listDirectory(dirFd, errPath);
  statEntries(dirFd, listing);
  return listing;
}

DirListing readDirectory(const std::string& path, int dirFd) {
  UniqueFd fd = openDirAt(dirFd, path);
  return readDirectory(fd.get(), path);
}

}  // namespace sm
