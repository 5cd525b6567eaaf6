#include "interpose.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

// The sanitizer runtimes' own entry points. gcc's shared libasan exports them (RTLD_NEXT from
// the executable finds the same functions); clang links its runtime statically into the
// executable, where RTLD_NEXT skips it and lands in libc -- then these are the only way to
// keep ASan checking the buffers the kernel reads into and writes from. Null without ASan.
extern "C" {
ssize_t __interceptor_pread(int, void*, size_t, off_t) __attribute__((weak));
ssize_t __interceptor_pwrite(int, const void*, size_t, off_t) __attribute__((weak));
ssize_t __interceptor_pread64(int, void*, size_t, off64_t) __attribute__((weak));
ssize_t __interceptor_pwrite64(int, const void*, size_t, off64_t) __attribute__((weak));
}

namespace interpose {

Counters counters;
void (*onPread)(uint64_t) = nullptr;
static std::atomic<Mode> mode{Mode::Off};

void start(Mode m) {
  counters.preadCalls = 0;
  counters.pwriteCalls = 0;
  counters.eintr = 0;
  counters.shortCount = 0;
  counters.directCalls = 0;
  mode = m;
}

void stop() {
  mode = Mode::Off;
  onPread = nullptr;
}

using PreadFn = ssize_t (*)(int, void*, size_t, off_t);
using PwriteFn = ssize_t (*)(int, const void*, size_t, off_t);
using Pread64Fn = ssize_t (*)(int, void*, size_t, off64_t);
using Pwrite64Fn = ssize_t (*)(int, const void*, size_t, off64_t);

template <typename Fn>
static Fn resolve(Fn interceptor, const char* name) {
  if (interceptor) return interceptor;
  void* p = dlsym(RTLD_NEXT, name);
  if (!p) {
    fprintf(stderr, "interpose: dlsym(RTLD_NEXT, %s): %s\n", name, dlerror());
    abort();
  }
  return reinterpret_cast<Fn>(p);
}

static PreadFn realPread() {
  static PreadFn fn = resolve<PreadFn>(__interceptor_pread, "pread");
  return fn;
}
static PwriteFn realPwrite() {
  static PwriteFn fn = resolve<PwriteFn>(__interceptor_pwrite, "pwrite");
  return fn;
}
static Pread64Fn realPread64() {
  static Pread64Fn fn = resolve<Pread64Fn>(__interceptor_pread64, "pread64");
  return fn;
}
static Pwrite64Fn realPwrite64() {
  static Pwrite64Fn fn = resolve<Pwrite64Fn>(__interceptor_pwrite64, "pwrite64");
  return fn;
}

static std::string owner(const void* fn) {
  Dl_info info;
  if (!fn || !dladdr(fn, &info)) return "?";
  std::string obj = info.dli_fname ? info.dli_fname : "?";
  std::string sym = info.dli_sname ? info.dli_sname : "?";
  return sym + " in " + obj;
}

std::string realPreadOwner() {
  return owner(reinterpret_cast<const void*>(realPread())) + " (RTLD_NEXT: " + owner(dlsym(RTLD_NEXT, "pread")) + ")";
}
std::string realPwriteOwner() {
  return owner(reinterpret_cast<const void*>(realPwrite())) + " (RTLD_NEXT: " + owner(dlsym(RTLD_NEXT, "pwrite")) + ")";
}

static bool isDirect(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && (fl & O_DIRECT) != 0;
}

// One interposed call: transfer(len) does the real call for len bytes.
template <typename Transfer>
static ssize_t faulty(bool isRead, int fd, size_t n, Transfer transfer) {
  Mode m = mode.load();
  if (m == Mode::Off) return transfer(n);
  uint64_t k = (isRead ? counters.preadCalls : counters.pwriteCalls).fetch_add(1) + 1;
  if (isRead && onPread) onPread(k);
  bool direct = isDirect(fd);
  if (direct) counters.directCalls++;
  if (k == 1 || k % 7 == 0) {
    counters.eintr++;
    errno = EINTR;
    return -1;
  }
  if (n <= 1) return transfer(n);
  if (direct) {
    if (m == Mode::Short) {
      size_t s = (n / 2) & ~static_cast<size_t>(4095);
      if (s == 0) return transfer(n);
      counters.shortCount++;
      return transfer(s);
    }
    ssize_t r = transfer(n);  // ShortReport: all of it, but claim an odd part
    if (r <= 1) return r;
    counters.shortCount++;
    return r / 2 + 1;
  }
  counters.shortCount++;
  return transfer(n / 2);
}

}  // namespace interpose

using namespace interpose;

extern "C" ssize_t pread(int fd, void* buf, size_t n, off_t off) {
  return faulty(true, fd, n, [&](size_t len) { return realPread()(fd, buf, len, off); });
}

extern "C" ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  return faulty(false, fd, n, [&](size_t len) { return realPwrite()(fd, buf, len, off); });
}

// Same for the explicit 64-bit names (what pread/pwrite become with _FILE_OFFSET_BITS=64).
extern "C" ssize_t pread64(int fd, void* buf, size_t n, off64_t off) {
  return faulty(true, fd, n, [&](size_t len) { return realPread64()(fd, buf, len, off); });
}

extern "C" ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  return faulty(false, fd, n, [&](size_t len) { return realPwrite64()(fd, buf, len, off); });
}
