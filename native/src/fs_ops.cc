#include "fs_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>

#include "sys_error.h"

namespace sm {

// The size-then-fetch dance of the xattr and readlink calls, retried when the value grows
// between the two calls (ERANGE).
template <typename Fetch>
static std::string fetchGrowing(Fetch fetch, size_t initial, const char* syscall, const std::string& path) {
  std::string buf(initial, '\0');
  for (;;) {
    ssize_t n = fetch(buf.data(), buf.size());
    if (n >= 0 && static_cast<size_t>(n) < buf.size()) {
      buf.resize(n);
      return buf;
    }
    if (n < 0 && errno != ERANGE) throwErrno(syscall, path);
    buf.resize(buf.size() * 2);
  }
}

std::vector<std::string> listXattrs(const std::string& path) {
  std::string names =
      fetchGrowing([&](char* b, size_t n) { return llistxattr(path.c_str(), b, n); }, 1024, "llistxattr", path);
  std::vector<std::string> out;
  for (size_t i = 0; i < names.size();) {
    size_t end = names.find('\0', i);
    if (end == std::string::npos) end = names.size();
    if (end > i) out.emplace_back(names, i, end - i);
    i = end + 1;
  }
  return out;
}

std::string getXattr(const std::string& path, const std::string& name) {
  return fetchGrowing([&](char* b, size_t n) { return lgetxattr(path.c_str(), name.c_str(), b, n); }, 256, "lgetxattr",
                      path);
}

void setXattr(const std::string& path, const std::string& name, const std::string& value, int flags) {
  if (lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), flags) != 0) throwErrno("lsetxattr", path);
}

void removeXattr(const std::string& path, const std::string& name) {
  if (lremovexattr(path.c_str(), name.c_str()) != 0) throwErrno("lremovexattr", path);
}

void setTimes(const std::string& path, Timespec atime, Timespec mtime, bool follow) {
  struct timespec ts[2] = {{static_cast<time_t>(atime.sec), static_cast<long>(atime.nsec)},
                           {static_cast<time_t>(mtime.sec), static_cast<long>(mtime.nsec)}};
  if (utimensat(AT_FDCWD, path.c_str(), ts, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0) throwErrno("utimensat", path);
}

void lchown(const std::string& path, uid_t uid, gid_t gid) {
  if (::lchown(path.c_str(), uid, gid) != 0) throwErrno("lchown", path);
}

void chmod(const std::string& path, mode_t mode) {
  if (::chmod(path.c_str(), mode) != 0) throwErrno("chmod", path);
}

void mknod(const std::string& path, mode_t mode, dev_t dev) {
  if (::mknod(path.c_str(), mode, dev) != 0) throwErrno("mknod", path);
}

void mkfifo(const std::string& path, mode_t mode) {
  if (::mkfifo(path.c_str(), mode) != 0) throwErrno("mkfifo", path);
}

std::string readlink(const std::string& path) {
  return fetchGrowing([&](char* b, size_t n) { return ::readlink(path.c_str(), b, n); }, 256, "readlink", path);
}

void symlink(const std::string& target, const std::string& path) {
  if (::symlink(target.c_str(), path.c_str()) != 0) throwErrno("symlink", path);
}

void link(const std::string& existing, const std::string& path) {
  if (::link(existing.c_str(), path.c_str()) != 0) throwErrno("link", path);
}

void makeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0) return;
  if (errno != EEXIST) throwErrno("mkdir", path);
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) throwErrno("lstat", path);
  if (S_ISDIR(st.st_mode)) return;
  if (::unlink(path.c_str()) != 0) throwErrno("unlink", path);
  if (::mkdir(path.c_str(), mode) != 0) throwErrno("mkdir", path);
}

}  // namespace sm
