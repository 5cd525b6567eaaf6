#include "lustre.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "sys_error.h"

namespace sm::lustre {
namespace {

struct llapi_layout;  // opaque in liblustreapi too
struct lu_fid {
  uint64_t f_seq;
  uint32_t f_oid, f_ver;
};

// Every symbol the addon may use, with liblustreapi's prototypes (lustre/lustreapi.h).
#define SM_LLAPI_SYMBOLS(X)                                                       \
  X(llapi_layout_get_by_path, llapi_layout*(const char*, uint32_t))               \
  X(llapi_layout_get_by_fd, llapi_layout*(int, uint32_t))                         \
  X(llapi_layout_free, void(llapi_layout*))                                       \
  X(llapi_layout_alloc, llapi_layout*())                                          \
  X(llapi_layout_is_composite, bool(llapi_layout*))                               \
  X(llapi_layout_comp_use, int(llapi_layout*, uint32_t))                          \
  X(llapi_layout_comp_add, int(llapi_layout*))                                    \
  X(llapi_layout_comp_extent_get, int(const llapi_layout*, uint64_t*, uint64_t*)) \
  X(llapi_layout_comp_extent_set, int(llapi_layout*, uint64_t, uint64_t))         \
  X(llapi_layout_comp_flags_get, int(const llapi_layout*, uint32_t*))             \
  X(llapi_layout_comp_flags_set, int(llapi_layout*, uint32_t))                    \
  X(llapi_layout_stripe_count_get, int(const llapi_layout*, uint64_t*))           \
  X(llapi_layout_stripe_count_set, int(llapi_layout*, uint64_t))                  \
  X(llapi_layout_stripe_size_get, int(const llapi_layout*, uint64_t*))            \
  X(llapi_layout_stripe_size_set, int(llapi_layout*, uint64_t))                   \
  X(llapi_layout_pattern_get, int(const llapi_layout*, uint64_t*))                \
  X(llapi_layout_pattern_set, int(llapi_layout*, uint64_t))                       \
  X(llapi_layout_ost_index_get, int(const llapi_layout*, uint64_t, uint64_t*))    \
  X(llapi_layout_ost_index_set, int(llapi_layout*, int, uint64_t))                \
  X(llapi_layout_pool_name_get, int(const llapi_layout*, char*, size_t))          \
  X(llapi_layout_pool_name_set, int(llapi_layout*, const char*))                  \
  X(llapi_layout_file_open, int(const char*, int, mode_t, const llapi_layout*))   \
  X(llapi_path2fid, int(const char*, lu_fid*))                                    \
  X(llapi_fd2fid, int(int, lu_fid*))                                              \
  X(llapi_fid2path, int(const char*, const char*, char*, int, long long*, int*))  \
  X(llapi_changelog_start, int(void**, int, const char*, long long))              \
  X(llapi_changelog_recv, int(void*, void**))                                     \
  X(llapi_changelog_free, int(void**))                                            \
  X(llapi_changelog_fini, int(void**))                                            \
  X(llapi_changelog_clear, int(const char*, const char*, long long))

struct Api {
#define SM_FIELD(name, type) std::add_pointer_t<type> name = nullptr;
  SM_LLAPI_SYMBOLS(SM_FIELD)
#undef SM_FIELD
  Status status;
};

const Api& api() {
  static Api a;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = getenv("STRIPEMOVER_LIBLUSTREAPI");
    a.status.library = env && *env ? env : "liblustreapi.so.1";
    // RTLD_LOCAL: the library's own dependencies never leak into the addon's namespace.
    void* h = dlopen(a.status.library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* why = dlerror();
      a.status.error = why ? why : "dlopen failed";
      return;
    }
    a.status.loaded = true;
#define SM_RESOLVE(name, type)                                          \
  a.name = reinterpret_cast<std::add_pointer_t<type>>(dlsym(h, #name)); \
  if (!a.name) a.status.missing.push_back(#name);
    SM_LLAPI_SYMBOLS(SM_RESOLVE)
#undef SM_RESOLVE
  });
  return a;
}

// The function, or an ENOSYS error naming the symbol the installed library lacks.
template <typename F>
F need(F f, const char* name, const std::string& path) {
  if (f) return f;
  throw SysError(ENOSYS, api().status.loaded ? name : "dlopen liblustreapi", path);
}
#define SM_NEED(name, path) need(api().name, #name, path)

// liblustreapi returns -1 with errno from most calls, -errno from some (the FID calls); -1
// without errno is reported as EIO, not as EPERM.
[[noreturn]] void throwRc(int rc, const char* call, const std::string& path) {
  int err = rc == -1 ? errno : -rc;
  throw SysError(err > 0 ? err : EIO, call, path);
}

void check(int rc, const char* call, const std::string& path) {
  if (rc != 0) throwRc(rc, call, path);
}

struct LayoutHandle {
  llapi_layout* l;
  ~LayoutHandle() {
    if (api().llapi_layout_free) api().llapi_layout_free(l);
  }
};

Layout readLayout(llapi_layout* l, const std::string& path) {
  const Api& a = api();
  LayoutHandle owner{l};
  // Lustre before 2.10 has no components: its layouts are all plain.
  bool components = a.llapi_layout_comp_use && a.llapi_layout_comp_extent_get && a.llapi_layout_comp_flags_get;
  Layout out;
  out.composite = a.llapi_layout_is_composite && a.llapi_layout_is_composite(l);
  if (components) {
    int rc = a.llapi_layout_comp_use(l, 1 /* LLAPI_LAYOUT_COMP_USE_FIRST */);
    if (rc < 0) throwRc(rc, "llapi_layout_comp_use", path);
  }
  do {
    Component c;
    if (components) {
      check(a.llapi_layout_comp_extent_get(l, &c.start, &c.end), "llapi_layout_comp_extent_get", path);
      check(a.llapi_layout_comp_flags_get(l, &c.flags), "llapi_layout_comp_flags_get", path);
    }
    check(SM_NEED(llapi_layout_stripe_count_get, path)(l, &c.stripeCount), "llapi_layout_stripe_count_get", path);
    check(SM_NEED(llapi_layout_stripe_size_get, path)(l, &c.stripeSize), "llapi_layout_stripe_size_get", path);
    check(SM_NEED(llapi_layout_pattern_get, path)(l, &c.pattern), "llapi_layout_pattern_get", path);
    char pool[64] = "";
    if (a.llapi_layout_pool_name_get) check(a.llapi_layout_pool_name_get(l, pool, sizeof pool), "pool_name_get", path);
    c.pool = pool;
    // A component not instantiated yet has no objects: the first index then fails with EINVAL.
    auto ostOf = SM_NEED(llapi_layout_ost_index_get, path);
    uint64_t count = c.stripeCount < 65536 ? c.stripeCount : 0;
    for (uint64_t i = 0; i < count; i++) {
      uint64_t index;
      if (ostOf(l, i, &index) != 0 || index >= kLayoutDefault) break;
      c.osts.push_back(index);
    }
    // All the stripes' OSTs or none (not instantiated): a partial list would misplace stripes.
    if (!c.osts.empty() && c.osts.size() != count) throw SysError(EIO, "llapi_layout_ost_index_get", path);
    out.components.push_back(std::move(c));
    if (!components) break;
    int rc = a.llapi_layout_comp_use(l, 3 /* LLAPI_LAYOUT_COMP_USE_NEXT */);
    if (rc < 0) throwRc(rc, "llapi_layout_comp_use", path);
    if (rc != 0) break;
  } while (true);
  return out;
}

}  // namespace

const Status& status() { return api().status; }

bool isLustre(const std::string& path) {
  struct statfs s;
  if (statfs(path.c_str(), &s) != 0) throwErrno("statfs", path);
  if (s.f_type == kSuperMagic) return true;
  // Off Lustre the FID ioctl fails (ENOTTY); a file system liblustreapi answers for is Lustre to us.
  lu_fid fid;
  return api().llapi_path2fid && api().llapi_path2fid(path.c_str(), &fid) == 0;
}

Layout layoutOf(const std::string& path) {
  errno = 0;
  llapi_layout* l = SM_NEED(llapi_layout_get_by_path, path)(path.c_str(), 0);
  if (!l) throwErrno("llapi_layout_get_by_path", path);
  return readLayout(l, path);
}

Layout layoutOfFd(int fd, const std::string& shownPath) {
  errno = 0;
  llapi_layout* l = SM_NEED(llapi_layout_get_by_fd, shownPath)(fd, 0);
  if (!l) throwErrno("llapi_layout_get_by_fd", shownPath);
  return readLayout(l, shownPath);
}

int createWithLayout(const std::string& path, int flags, mode_t mode, const Layout& layout, bool keepOsts) {
  const Api& a = api();
  errno = 0;
  llapi_layout* l = SM_NEED(llapi_layout_alloc, path)();
  if (!l) throwErrno("llapi_layout_alloc", path);
  LayoutHandle owner{l};
  bool composite = layout.composite || layout.components.size() > 1;
  for (size_t i = 0; i < layout.components.size(); i++) {
    const Component& c = layout.components[i];
    if (i > 0) check(SM_NEED(llapi_layout_comp_add, path)(l), "llapi_layout_comp_add", path);
    if (composite)
      check(SM_NEED(llapi_layout_comp_extent_set, path)(l, c.start, c.end), "llapi_layout_comp_extent_set", path);
    check(SM_NEED(llapi_layout_pattern_set, path)(l, c.pattern), "llapi_layout_pattern_set", path);
    check(SM_NEED(llapi_layout_stripe_size_set, path)(l, c.stripeSize), "llapi_layout_stripe_size_set", path);
    check(SM_NEED(llapi_layout_stripe_count_set, path)(l, c.stripeCount), "llapi_layout_stripe_count_set", path);
    if (!c.pool.empty())
      check(SM_NEED(llapi_layout_pool_name_set, path)(l, c.pool.c_str()), "llapi_layout_pool_name_set", path);
    if (keepOsts)
      for (size_t k = 0; k < c.osts.size(); k++)
        check(SM_NEED(llapi_layout_ost_index_set, path)(l, static_cast<int>(k), c.osts[k]),
              "llapi_layout_ost_index_set", path);
    // Only the flags a user may set (read/write preference); instantiation, staleness and the
    // like are Lustre's to decide.
    if (uint32_t userFlags = c.flags & kCompUserFlags; composite && userFlags && a.llapi_layout_comp_flags_set)
      check(a.llapi_layout_comp_flags_set(l, userFlags), "llapi_layout_comp_flags_set", path);
  }
  errno = 0;
  int fd = SM_NEED(llapi_layout_file_open, path)(path.c_str(), flags | O_CREAT, mode, l);
  if (fd < 0) throwRc(fd, "llapi_layout_file_open", path);
  return fd;
}

std::string Fid::text() const {
  char buf[64];
  snprintf(buf, sizeof buf, "[0x%" PRIx64 ":0x%" PRIx32 ":0x%" PRIx32 "]", seq, oid, ver);
  return buf;
}

Fid parseFid(const std::string& text) {
  Fid f;
  unsigned long long seq;
  unsigned oid, ver;
  int used = 0;
  const char* s = text.c_str() + (text.size() > 0 && text[0] == '[' ? 1 : 0);
  if (sscanf(s, "0x%llx:0x%x:0x%x%n", &seq, &oid, &ver, &used) != 3 ||
      std::string(s + used) != (text[0] == '[' ? "]" : ""))
    throw SysError(EINVAL, "parse FID", text);
  f.seq = seq, f.oid = oid, f.ver = ver;
  return f;
}

Fid pathToFid(const std::string& path) {
  lu_fid fid{};
  errno = 0;
  if (int rc = SM_NEED(llapi_path2fid, path)(path.c_str(), &fid); rc != 0) throwRc(rc, "llapi_path2fid", path);
  return Fid{fid.f_seq, fid.f_oid, fid.f_ver};
}

Fid fdToFid(int fd, const std::string& shownPath) {
  lu_fid fid{};
  errno = 0;
  if (int rc = SM_NEED(llapi_fd2fid, shownPath)(fd, &fid); rc != 0) throwRc(rc, "llapi_fd2fid", shownPath);
  return Fid{fid.f_seq, fid.f_oid, fid.f_ver};
}

std::string fidToPath(const std::string& mnt, const Fid& fid, int linkno) {
  auto fid2path = SM_NEED(llapi_fid2path, mnt);
  std::string text = fid.text();
  // Paths may exceed PATH_MAX on Lustre: grow the buffer while the library says ERANGE.
  for (size_t size = 4096;; size *= 4) {
    std::string buf(size, '\0');
    long long recno = -1;
    int link = linkno;
    errno = 0;
    int rc = fid2path(mnt.c_str(), text.c_str(), buf.data(), static_cast<int>(size), &recno, &link);
    if (rc == 0) return buf.substr(0, buf.find('\0'));
    int err = rc == -1 && errno != 0 ? errno : -rc;
    if (err != ERANGE || size >= (1u << 20)) throw SysError(err > 0 ? err : EIO, "llapi_fid2path", mnt + " " + text);
  }
}

}  // namespace sm::lustre
