// One directory read in one call: every name (sorted by bytes) and the lstat of every entry,
// done relative to the directory's fd -- no path is ever built, so it works at any depth.
#pragma once
#include <fcntl.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "file.h"

namespace sm {

// An owned descriptor, closed when the object goes (close errors on a directory are ignored).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// openat(parentFd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW). parentFd may be
// AT_FDCWD. path is relative to parentFd (one name or several components) or absolute, and
// must be shorter than PATH_MAX: deeper directories are reached by chaining openDirAt calls,
// each relative to the fd the previous one returned. A final symlink is never followed
// (ENOTDIR). Throws SysError(errno, "opendir", path).
UniqueFd openDirAt(int parentFd, const std::string& path);

struct DirListing {
  // Every name but . and .., sorted by bytes (memcmp; a name sorts before the longer names it
  // is a prefix of), packed without separators: name i is names[offsets[i], offsets[i + 1]).
  std::string names;
  std::vector<uint32_t> offsets{0};  // size() + 1 of them
  std::vector<uint64_t> dirIno;      // d_ino as readdir reported it
  // Filled by statEntries: the lstat of entry i, or zeros where errs[i] is set.
  std::vector<FileStat> stats;
  // 0, or the errno of entry i's statx (ENOENT: it vanished between readdir and statx).
  std::vector<int> errs;

  size_t size() const { return offsets.size() - 1; }
  std::string_view name(size_t i) const { return {names.data() + offsets[i], offsets[i + 1] - offsets[i]}; }
};

// The names of the directory open on dirFd, sorted; no stats. Reads with getdents64 from the
// start of the directory. errPath names the directory in errors (SysError(errno, "readdir")).
DirListing listDirectory(int dirFd, const std::string& errPath = "");

// statx(dirFd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME) of every entry,
// issued in inode order (far fewer seeks on a cold disk); fills stats and errs. Never throws
// for an entry: its failure goes to errs.
void statEntries(int dirFd, DirListing& listing);

// listDirectory then statEntries.
DirListing readDirectory(int dirFd, const std::string& errPath = "");

// Opens path (relative to dirFd, as openDirAt), reads it, closes it.
DirListing readDirectory(const std::string& path, int dirFd = AT_FDCWD);

}  // namespace sm
