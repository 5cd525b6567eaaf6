// The N-API surface of dir_scan: readDir / readDirAsync, one call per directory that hands JS
// every name and every lstat at once, in a handful of typed arrays instead of an object per
// entry; readDirs / readDirsAsync, the same for several directories in one call (a hand-off to
// the libuv pool costs more than reading a small directory). Registered into the addon's
// exports by registerScan (called from addon.cc's Init).
#include <fcntl.h>
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <utility>

#include "dir_scan.h"
#include "napi_util.h"
#include "sys_error.h"

namespace {

using namespace sm::js;

// Numbers per entry in `nums`, and bigints per entry in `times` (see src/native.ts).
constexpr size_t kNums = 8;   // mode, nlink, uid, gid, size, blocks, dev, rdev
constexpr size_t kTimes = 4;  // atimeNs, mtimeNs, ctimeNs, birthtimeNs
// Arrays at least this big are handed to JS without a copy (their memory freed by GC); smaller
// ones are copied, which is cheaper than an external buffer's finalizer.
constexpr size_t kExternalMin = 256 * 1024;

// Nanoseconds in an int64 (1677..2262), or false.
bool nsFits(int64_t sec, uint32_t nsec, int64_t* out) {
  int64_t ns;
  if (__builtin_mul_overflow(sec, int64_t{1000000000}, &ns)) return false;
  return !__builtin_add_overflow(ns, static_cast<int64_t>(nsec), out);
}

// Where to read: path relative to fd (AT_FDCWD for a plain path); keepOpen hands the
// directory's fd to JS.
struct Target {
  int fd = AT_FDCWD;
  std::string path;
  bool keepOpen = false;
};

// A path (Buffer or string), or { fd, name, keepOpen }: name (one or more components) relative
// to the open directory fd (or to the working directory without fd).
Target targetArg(const Napi::Value& v, bool keepOpen) {
  Target t;
  t.keepOpen = keepOpen;
  if (v.IsObject() && !v.IsBuffer()) {
    auto o = v.As<Napi::Object>();
    Napi::Value fd = o.Get("fd");
    if (!fd.IsUndefined()) {
      if (!fd.IsNumber() || fd.As<Napi::Number>().DoubleValue() < 0 ||
          fd.As<Napi::Number>().DoubleValue() != fd.As<Napi::Number>().Int32Value())
        throw Napi::TypeError::New(v.Env(), "fd must be a non-negative integer");
      t.fd = fd.As<Napi::Number>().Int32Value();
    }
    t.path = pathArg(o.Get("name"), "name");
    Napi::Value keep = o.Get("keepOpen");
    if (!keep.IsUndefined()) t.keepOpen = keep.ToBoolean().Value();
  } else {
    t.path = pathArg(v, "path");
  }
  return t;
}

bool keepOpenArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[1].IsObject()) return false;
  Napi::Value v = info[1].As<Napi::Object>().Get("keepOpen");
  return !v.IsUndefined() && v.ToBoolean().Value();
}

std::vector<Target> targetsArg(const Napi::Value& v) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), "targets must be an array");
  auto a = v.As<Napi::Array>();
  std::vector<Target> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(targetArg(a.Get(i), false));
  return out;
}

// Malloc'ed bytes, freed with the object unless handed over.
struct Block {
  Block() = default;
  explicit Block(size_t n) : size(n), data(n ? static_cast<char*>(std::malloc(n)) : nullptr) {
    if (n && !data) throw std::bad_alloc();
  }
  Block(Block&& o) noexcept : size(o.size), data(o.data) { o.data = nullptr, o.size = 0; }
  Block& operator=(Block&& o) noexcept {
    std::swap(size, o.size);
    std::swap(data, o.data);
    return *this;
  }
  ~Block() { std::free(data); }
  size_t size = 0;
  char* data = nullptr;
};

// Directories read in one job, in the layout JS receives, built on the pool thread: the
// entries of every directory one after the other, every column in one block (one ArrayBuffer,
// several views), the names in another.
struct Packed {
  size_t dirs = 0;
  size_t count = 0;  // entries, all directories together
  Block columns;     // nums (f64 x kNums count) | ino (u64 x count) | times (i64 x kTimes count)
                     // | offsets (u32 x count + 1) | first (u32 x dirs + 1) | fds (i32 x dirs)
  std::string names;
  std::vector<sm::UniqueFd> fds;                    // per directory, with keepOpen
  std::vector<std::unique_ptr<SysError>> failures;  // per directory: why it was not read
  std::vector<uint32_t> errIndex;
  std::vector<int> errNo;
  std::vector<uint32_t> wideIndex;  // entries with a time outside int64 nanoseconds
  std::vector<sm::FileStat> wideStat;

  size_t inoAt() const { return count * kNums * 8; }
  size_t timesAt() const { return inoAt() + count * 8; }
  size_t offsetsAt() const { return timesAt() + count * kTimes * 8; }
  size_t firstAt() const { return offsetsAt() + (count + 1) * 4; }
  size_t fdsAt() const { return firstAt() + (dirs + 1) * 4; }
  size_t bytes() const { return fdsAt() + dirs * 4; }
};

Packed readPacked(const std::vector<Target>& targets) {
  Packed p;
  p.dirs = targets.size();
  p.fds.resize(p.dirs);
  p.failures.resize(p.dirs);
  std::vector<sm::DirListing> listings(p.dirs);
  size_t nameBytes = 0;
  for (size_t d = 0; d < p.dirs; d++) {
    const Target& t = targets[d];
    try {
      sm::UniqueFd fd = sm::openDirAt(t.fd, t.path);
      listings[d] = sm::readDirectory(fd.get(), t.path);
      if (nameBytes + listings[d].names.size() > std::numeric_limits<uint32_t>::max())
        throw SysError(EOVERFLOW, "readdir", t.path);
      nameBytes += listings[d].names.size();
      p.count += listings[d].size();
      if (t.keepOpen) p.fds[d] = std::move(fd);
    } catch (const SysError& e) {
      p.failures[d] = std::make_unique<SysError>(e);
      listings[d] = sm::DirListing();
    }
  }

  size_t n = p.count;
  p.columns = Block(p.bytes());
  std::memset(p.columns.data, 0, p.columns.size);
  auto* nums = reinterpret_cast<double*>(p.columns.data);
  auto* ino = reinterpret_cast<uint64_t*>(p.columns.data + p.inoAt());
  auto* times = reinterpret_cast<int64_t*>(p.columns.data + p.timesAt());
  auto* offsets = reinterpret_cast<uint32_t*>(p.columns.data + p.offsetsAt());
  auto* first = reinterpret_cast<uint32_t*>(p.columns.data + p.firstAt());
  auto* fds = reinterpret_cast<int32_t*>(p.columns.data + p.fdsAt());
  p.names.reserve(nameBytes);
  size_t g = 0;  // global entry index
  for (size_t d = 0; d < p.dirs; d++) {
    sm::DirListing& l = listings[d];
    first[d] = static_cast<uint32_t>(g);
    fds[d] = p.fds[d].get();
    uint32_t base = static_cast<uint32_t>(p.names.size());
    p.names += l.names;
    for (size_t i = 0; i < l.size(); i++, g++) {
      offsets[g] = base + l.offsets[i];
      if (l.errs[i]) {
        p.errIndex.push_back(static_cast<uint32_t>(g));
        p.errNo.push_back(l.errs[i]);
        continue;  // its fields stay 0: mode 0 marks it
      }
      const sm::FileStat& s = l.stats[i];
      double* f = nums + g * kNums;
      f[0] = s.mode, f[1] = s.nlink, f[2] = s.uid, f[3] = s.gid;
      f[4] = static_cast<double>(s.size), f[5] = static_cast<double>(s.blocks);
      f[6] = static_cast<double>(s.dev), f[7] = static_cast<double>(s.rdev);
      ino[g] = s.ino;
      int64_t* tm = times + g * kTimes;
      if (!(nsFits(s.atimeSec, s.atimeNsec, &tm[0]) && nsFits(s.mtimeSec, s.mtimeNsec, &tm[1]) &&
            nsFits(s.ctimeSec, s.ctimeNsec, &tm[2]) && nsFits(s.btimeSec, s.btimeNsec, &tm[3]))) {
        tm[0] = tm[1] = tm[2] = tm[3] = 0;
        p.wideIndex.push_back(static_cast<uint32_t>(g));
        p.wideStat.push_back(s);
      }
    }
    l = sm::DirListing();  // free as we go
  }
  offsets[n] = static_cast<uint32_t>(p.names.size());
  first[p.dirs] = static_cast<uint32_t>(n);
  return p;
}

Napi::ArrayBuffer arrayBuffer(Napi::Env env, Block& b) {
  if (b.size >= kExternalMin) {
    auto* hold = new Block(std::move(b));
    return Napi::ArrayBuffer::New(
        env, hold->data, hold->size, [](Napi::Env, void*, Block* h) { delete h; }, hold);
  }
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, b.size);
  if (b.size) std::memcpy(ab.Data(), b.data, b.size);
  return ab;
}

// The fields a batch and a single listing share: names, offsets, nums, ino, times, errors,
// wideTimes. Error names are taken before the columns may move into an external ArrayBuffer.
Napi::Object entriesToJs(Napi::Env env, Packed& p, Napi::ArrayBuffer* columnsOut) {
  size_t n = p.count;
  Napi::Object o = Napi::Object::New(env);
  Napi::Buffer<char> names;
  if (p.names.size() >= kExternalMin) {
    auto* hold = new std::string(std::move(p.names));
    names = Napi::Buffer<char>::New(
        env, hold->data(), hold->size(), [](Napi::Env, char*, std::string* h) { delete h; }, hold);
  } else {
    names = Napi::Buffer<char>::Copy(env, p.names.data(), p.names.size());
  }
  const char* nameBytes = names.Data();
  const auto* offsets = reinterpret_cast<const uint32_t*>(p.columns.data + p.offsetsAt());
  Napi::Array errors = Napi::Array::New(env, p.errIndex.size());
  for (size_t k = 0; k < p.errIndex.size(); k++) {
    uint32_t i = p.errIndex[k];
    std::string name(nameBytes + offsets[i], offsets[i + 1] - offsets[i]);
    SysError e(p.errNo[k], "statx", name);
    Napi::Object err = Napi::Object::New(env);
    err.Set("index", i);
    err.Set("code", e.code());
    err.Set("errno", Napi::Number::New(env, -e.err));
    err.Set("syscall", e.syscall);
    err.Set("name", Napi::Buffer<char>::Copy(env, name.data(), name.size()));
    err.Set("message", e.what());
    errors[k] = err;
  }
  Napi::Array wide = Napi::Array::New(env, p.wideIndex.size());
  for (size_t k = 0; k < p.wideIndex.size(); k++) {
    const sm::FileStat& s = p.wideStat[k];
    Napi::Object w = Napi::Object::New(env);
    w.Set("index", p.wideIndex[k]);
    w.Set("atimeNs", nsBigInt(env, s.atimeSec, s.atimeNsec));
    w.Set("mtimeNs", nsBigInt(env, s.mtimeSec, s.mtimeNsec));
    w.Set("ctimeNs", nsBigInt(env, s.ctimeSec, s.ctimeNsec));
    w.Set("birthtimeNs", nsBigInt(env, s.btimeSec, s.btimeNsec));
    wide[k] = w;
  }
  size_t offsetsAt = p.offsetsAt(), inoAt = p.inoAt(), timesAt = p.timesAt();
  Napi::ArrayBuffer columns = arrayBuffer(env, p.columns);
  o.Set("names", names);
  o.Set("offsets", Napi::Uint32Array::New(env, n + 1, columns, offsetsAt));
  o.Set("nums", Napi::Float64Array::New(env, n * kNums, columns, 0));
  o.Set("ino", Napi::BigUint64Array::New(env, n, columns, inoAt));
  o.Set("times", Napi::BigInt64Array::New(env, n * kTimes, columns, timesAt));
  o.Set("errors", errors);
  o.Set("wideTimes", wide);
  *columnsOut = columns;
  return o;
}

// One directory: its listing, or its failure thrown.
Napi::Value listingToJs(Napi::Env env, Packed& p) {
  if (p.failures[0]) throw toJsError(env, *p.failures[0]);
  Napi::ArrayBuffer columns;
  Napi::Object o = entriesToJs(env, p, &columns);
  // Last: once the fd is JS's, nothing here may throw and leave it unowned.
  if (p.fds[0].get() >= 0) o.Set("fd", Napi::Number::New(env, p.fds[0].release()));
  return o;
}

// Several directories: the entries of all, and per directory where its own start (first),
// its fd (fds, -1 without keepOpen) and why it could not be read (failures, null when it was).
Napi::Value batchToJs(Napi::Env env, Packed& p) {
  size_t firstAt = p.firstAt(), fdsAt = p.fdsAt();
  Napi::ArrayBuffer columns;
  Napi::Object o = entriesToJs(env, p, &columns);
  o.Set("first", Napi::Uint32Array::New(env, p.dirs + 1, columns, firstAt));
  Napi::Array failures = Napi::Array::New(env, p.dirs);
  for (size_t d = 0; d < p.dirs; d++) {
    if (p.failures[d]) {
      failures[d] = toJsError(env, *p.failures[d]).Value();
    } else {
      failures[d] = env.Null();
    }
  }
  o.Set("failures", failures);
  o.Set("fds", Napi::Int32Array::New(env, p.dirs, columns, fdsAt));
  for (auto& fd : p.fds) fd.release();  // JS's now (their numbers are in fds)
  return o;
}

// readDir(target, { keepOpen }) -> listing: blocking, for workers.
Napi::Value ReadDir(const Napi::CallbackInfo& info) {
  std::vector<Target> targets{targetArg(info[0], keepOpenArg(info))};
  Packed p = readPacked(targets);
  return listingToJs(info.Env(), p);
}

// readDirAsync(target, { keepOpen }) -> Promise<listing>: on the libuv pool.
Napi::Value ReadDirAsync(const Napi::CallbackInfo& info) {
  std::vector<Target> targets{targetArg(info[0], keepOpenArg(info))};
  return Job<Packed>::run(
      info.Env(), [targets] { return readPacked(targets); },
      [](Napi::Env env, Packed& p) { return listingToJs(env, p); });
}

// readDirs(targets) -> batch: several directories in one call, blocking.
Napi::Value ReadDirs(const Napi::CallbackInfo& info) {
  std::vector<Target> targets = targetsArg(info[0]);
  Packed p = readPacked(targets);
  return batchToJs(info.Env(), p);
}

// readDirsAsync(targets) -> Promise<batch>: one pool job for all (one hand-off to a pool thread
// and one conversion instead of one per directory).
Napi::Value ReadDirsAsync(const Napi::CallbackInfo& info) {
  std::vector<Target> targets = targetsArg(info[0]);
  return Job<Packed>::run(
      info.Env(), [targets] { return readPacked(targets); },
      [](Napi::Env env, Packed& p) { return batchToJs(env, p); });
}

}  // namespace

void registerScan(Napi::Env env, Napi::Object exports) {
  exports.Set("readDir", Napi::Function::New<ReadDir>(env));
  exports.Set("readDirAsync", Napi::Function::New<ReadDirAsync>(env));
  exports.Set("readDirs", Napi::Function::New<ReadDirs>(env));
  exports.Set("readDirsAsync", Napi::Function::New<ReadDirsAsync>(env));
}
