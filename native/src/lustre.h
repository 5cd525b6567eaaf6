// Lustre through liblustreapi, loaded at run time with dlopen: the addon builds and runs where
// Lustre is absent, and uses whatever the installed Lustre provides (a missing symbol disables
// only what needs it). The library's path can be overridden with STRIPEMOVER_LIBLUSTREAPI.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sm::lustre {

// liblustreapi's marker values for "not set" in stripe counts, sizes and OST indices.
constexpr uint64_t kLayoutDefault = 0x1000000000000002ULL;
constexpr uint64_t kLayoutWide = 0x1000000000000003ULL;
constexpr uint64_t kExtentEof = ~0ULL;
constexpr uint32_t kCompInit = 0x10;      // LCME_FL_INIT: the component's objects exist
constexpr uint32_t kCompUserFlags = 0x6;  // LCME_FL_PREF_RD | LCME_FL_PREF_WR
constexpr long kSuperMagic = 0x0BD00BD0;
// Where a copy off Lustre records each file's layout (JSON), so a restore can recreate it.
constexpr const char* kLayoutRecordXattr = "user.stripemover.layout";

// One component of a layout (a plain layout is one component over [0, EOF)).
struct Component {
  uint64_t start = 0, end = kExtentEof;
  uint64_t pattern = 0;  // RAID0 0, MDT 2, OVERSTRIPING 4 (bits)
  uint64_t stripeSize = kLayoutDefault, stripeCount = kLayoutDefault;
  uint32_t flags = 0;
  std::string pool;
  std::vector<uint64_t> osts;  // empty when not instantiated (or, when creating, "let Lustre choose")
};

struct Layout {
  bool composite = false;
  std::vector<Component> components;
};

struct Fid {
  uint64_t seq = 0;
  uint32_t oid = 0, ver = 0;
  std::string text() const;  // "[0x200000400:0x1:0x0]"
};

// What was loaded: the library's path, the dlerror() if it could not be, and the symbols that the
// loaded library lacks (an older Lustre).
struct Status {
  bool loaded = false;
  std::string library, error;
  std::vector<std::string> missing;
};

// Loads the library on first use (thread-safe), and says how that went.
const Status& status();

// Whether path (which must exist) is on Lustre: the file system's magic, or, for a file system
// the loaded liblustreapi answers for, a FID it can resolve.
bool isLustre(const std::string& path);

// The layout of a file or directory; throws SysError (ENOTTY off Lustre, ENOSYS without the library).
Layout layoutOf(const std::string& path);
Layout layoutOfFd(int fd, const std::string& shownPath);

// Creates path with this layout and returns its fd (flags get O_CREAT; add O_EXCL to refuse an
// existing file). keepOsts = false drops the OST indices, so Lustre places the stripes afresh.
int createWithLayout(const std::string& path, int flags, mode_t mode, const Layout& layout, bool keepOsts);

Fid pathToFid(const std::string& path);
Fid fdToFid(int fd, const std::string& shownPath);
Fid parseFid(const std::string& text);  // throws SysError(EINVAL) on a malformed FID
// The path of fid relative to the mount point mnt; linkno picks one of several hard links.
std::string fidToPath(const std::string& mnt, const Fid& fid, int linkno = 0);

}  // namespace sm::lustre
