// Metadata of a copied object, applied after its data: owner (as root), mode, xattrs (POSIX
// ACLs are the system.posix_acl_* xattrs), then times -- last, since the others change ctime
// only but a later write would change mtime.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "file.h"

namespace sm {

struct MetadataOptions {
  bool owner = false;  // lchown/fchown: only root may give files away
};

// From an open source descriptor to an open destination descriptor (the fast path).
void copyMetadataFd(int srcFd, int dstFd, const FileStat& st, const MetadataOptions& o, const std::string& dstPath);
// By path, never following a final symlink (directories, symlinks, fifos, devices).
void copyMetadataPath(const std::string& src, const std::string& dst, const FileStat& st, const MetadataOptions& o);

// The extended attributes (ACLs included) a copy of `path` carries, as name and value, sorted by
// name: what the calls above copy (not security.* labels, nor Lustre's internal attributes).
std::vector<std::pair<std::string, std::string>> copiedXattrs(const std::string& path);

}  // namespace sm
