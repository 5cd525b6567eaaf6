#include "metadata.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "sys_error.h"

namespace sm {

namespace {

// The calls metadata needs, on descriptors or on paths: one algorithm serves both.
struct FdOps {
  int src, dst;
  const std::string& dstPath;
  ssize_t list(char* b, size_t n) const { return flistxattr(src, b, n); }
  ssize_t listDst(char* b, size_t n) const { return flistxattr(dst, b, n); }
  ssize_t get(const char* name, char* b, size_t n) const { return fgetxattr(src, name, b, n); }
  int set(const char* name, const std::string& v) const { return fsetxattr(dst, name, v.data(), v.size(), 0); }
  int remove(const char* name) const { return fremovexattr(dst, name); }
  int chown(uid_t u, gid_t g) const { return fchown(dst, u, g); }
  int chmod(mode_t m) const { return fchmod(dst, m); }
  int times(const timespec ts[2]) const { return futimens(dst, ts); }
  const std::string& path() const { return dstPath; }
};

struct PathOps {
  const std::string& src;
  const std::string& dst;
  ssize_t list(char* b, size_t n) const { return llistxattr(src.c_str(), b, n); }
  ssize_t listDst(char* b, size_t n) const { return llistxattr(dst.c_str(), b, n); }
  ssize_t get(const char* name, char* b, size_t n) const { return lgetxattr(src.c_str(), name, b, n); }
  int set(const char* name, const std::string& v) const { return lsetxattr(dst.c_str(), name, v.data(), v.size(), 0); }
  int remove(const char* name) const { return lremovexattr(dst.c_str(), name); }
  int chown(uid_t u, gid_t g) const { return lchown(dst.c_str(), u, g); }
  int chmod(mode_t m) const { return ::chmod(dst.c_str(), m); }
  int times(const timespec ts[2]) const { return utimensat(AT_FDCWD, dst.c_str(), ts, AT_SYMLINK_NOFOLLOW); }
  const std::string& path() const { return dst; }
};

// Reads a variable-size value: first into what the buffer holds already (one call for the
// common short value), growing it on ERANGE to the size the kernel reports.
template <typename Fetch>
bool fetch(Fetch f, std::string& out) {
  out.resize(std::max<size_t>(out.capacity(), 1024));
  for (;;) {
    ssize_t n = f(out.data(), out.size());
    if (n >= 0) {
      out.resize(n);
      return true;
    }
    if (errno != ERANGE) return false;
    ssize_t need = f(nullptr, 0);
    if (need < 0) return false;
    out.resize(static_cast<size_t>(need) + 1);
  }
}

// Lustre's own attributes (layout, FIDs, link EA, size-on-MDT) describe the source's objects:
// copied verbatim they would be wrong or refused. Layouts travel by the layout path instead.
bool lustreInternal(const std::string& name) {
  static const char* const kTrusted[] = {"lov", "lma", "link", "som", "fid", "lmv", "dmv"};
  if (name.rfind("lustre.", 0) == 0) return true;
  if (name.rfind("trusted.", 0) != 0) return false;
  for (const char* n : kTrusted)
    if (name.compare(8, std::string::npos, n) == 0) return true;
  return false;
}

// Security labels belong to the target system (the source's may not even be valid there), and
// Lustre's internal attributes to its objects: neither is copied nor removed.
bool ownedByTarget(const std::string& name) { return name.rfind("security.", 0) == 0 || lustreInternal(name); }

// The names in a list of NUL-terminated xattr names, those the target owns left out.
std::vector<std::string> namesOf(const std::string& list) {
  std::vector<std::string> out;
  for (size_t i = 0; i < list.size();) {
    std::string name(list.c_str() + i);
    i += name.size() + 1;
    if (!name.empty() && !ownedByTarget(name)) out.push_back(std::move(name));
  }
  return out;
}

using Xattrs = std::vector<std::pair<std::string, std::string>>;

// The attributes a copy carries (see namesOf), name and value, read through list and get;
// errors name `shown`.
template <typename List, typename Get>
Xattrs readCopied(List list, Get get, const std::string& shown) {
  Xattrs out;
  std::string names, value;
  if (!fetch(list, names)) {
    if (errno == ENOTSUP) return out;
    throwErrno("listxattr", shown);
  }
  for (std::string& name : namesOf(names)) {
    if (!fetch([&](char* b, size_t n) { return get(name.c_str(), b, n); }, value)) {
      if (errno == ENODATA) continue;  // removed meanwhile
      throwErrno("getxattr", shown);
    }
    out.emplace_back(std::move(name), value);
  }
  return out;
}

template <typename Ops>
void apply(const Ops& ops, const FileStat& st, const MetadataOptions& o) {
  bool link = S_ISLNK(st.mode);
  Xattrs attrs = readCopied([&](char* b, size_t n) { return ops.list(b, n); },
                            [&](const char* name, char* b, size_t n) { return ops.get(name, b, n); }, ops.path());
  auto copied = [&](const std::string& name) {
    return std::any_of(attrs.begin(), attrs.end(), [&](const auto& a) { return a.first == name; });
  };
  std::string list;
  // The target's own extras go first: an ACL inherited from its directory's default ACL, or one
  // left from an earlier version, is not the source's (and would also change what chmod sets).
  // Only in the namespaces copied: a file system's own (system.nfs4_acl, btrfs.*) are its own.
  auto removable = [](const std::string& n) {
    return n.rfind("user.", 0) == 0 || n.rfind("trusted.", 0) == 0 || n == "system.posix_acl_access" ||
           n == "system.posix_acl_default";
  };
  if (fetch([&](char* b, size_t n) { return ops.listDst(b, n); }, list)) {
    for (const std::string& name : namesOf(list))
      if (removable(name) && !copied(name) && ops.remove(name.c_str()) != 0 && errno != ENODATA)
        throwErrno("removexattr", ops.path());
  } else if (errno != ENOTSUP) {
    throwErrno("listxattr", ops.path());
  }
  // chown first: it clears setuid/setgid, which chmod then sets.
  if (o.owner && ops.chown(st.uid, st.gid) != 0) throwErrno("chown", ops.path());
  if (!link && ops.chmod(st.mode & 07777) != 0) throwErrno("chmod", ops.path());
  for (const auto& [name, value] : attrs)
    if (ops.set(name.c_str(), value) != 0) throwErrno("setxattr", ops.path());
  timespec ts[2] = {{st.atimeSec, st.atimeNsec}, {st.mtimeSec, st.mtimeNsec}};
  if (ops.times(ts) != 0) throwErrno("utimensat", ops.path());
}

}  // namespace

void copyMetadataFd(int srcFd, int dstFd, const FileStat& st, const MetadataOptions& o, const std::string& dstPath) {
  apply(FdOps{srcFd, dstFd, dstPath}, st, o);
}

void copyMetadataPath(const std::string& src, const std::string& dst, const FileStat& st, const MetadataOptions& o) {
  apply(PathOps{src, dst}, st, o);
}

std::vector<std::pair<std::string, std::string>> copiedXattrs(const std::string& path) {
  Xattrs out =
      readCopied([&](char* b, size_t n) { return llistxattr(path.c_str(), b, n); },
                 [&](const char* name, char* b, size_t n) { return lgetxattr(path.c_str(), name, b, n); }, path);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sm
