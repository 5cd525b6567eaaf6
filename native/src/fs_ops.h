// Path-based metadata calls. Paths are byte strings (std::string holds any byte but NUL),
// and none of these follow a final symlink unless asked: a copier acts on the link itself.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sm {

std::vector<std::string> listXattrs(const std::string& path);
std::string getXattr(const std::string& path, const std::string& name);
void setXattr(const std::string& path, const std::string& name, const std::string& value, int flags);
void removeXattr(const std::string& path, const std::string& name);

struct Timespec {
  int64_t sec;
  int64_t nsec;  // UTIME_OMIT leaves the time as it is
};
void setTimes(const std::string& path, Timespec atime, Timespec mtime, bool follow);

void lchown(const std::string& path, uid_t uid, gid_t gid);
void chmod(const std::string& path, mode_t mode);
void mknod(const std::string& path, mode_t mode, dev_t dev);
void mkfifo(const std::string& path, mode_t mode);
std::string readlink(const std::string& path);
void symlink(const std::string& target, const std::string& path);
void link(const std::string& existing, const std::string& path);
// mkdir, keeping a directory already there and replacing anything else (a file, or a symlink
// planted to lead writes elsewhere): never followed.
void makeDir(const std::string& path, mode_t mode);

}  // namespace sm
