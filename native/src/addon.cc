// The N-API surface, and nothing else: argument conversion, errors, async plumbing.
// All I/O lives in the plain C++ classes it wraps.
#include <fcntl.h>
#include <napi.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <functional>
#include <memory>

#include "aligned_buffer.h"
#include "copy_files.h"
#include "copy_range.h"
#include "file.h"
#include "fs_ops.h"
#include "metadata.h"
#include "napi_util.h"
#include "sys_error.h"
#include "xxh64.h"

void registerScan(Napi::Env env, Napi::Object exports);    // addon_scan.cc
void registerLustre(Napi::Env env, Napi::Object exports);  // addon_lustre.cc

namespace {

using namespace sm::js;

using sm::SysError;

// The classes of this addon instance. Per environment, never static: each worker thread
// loads the addon into an environment of its own.
struct Classes {
  Napi::FunctionReference file;
  Napi::FunctionReference xxh64;
};
Classes& classes(Napi::Env env) { return *env.GetInstanceData<Classes>(); }

// ---- Xxh64 ---------------------------------------------------------------------------

class Xxh64Wrap : public Napi::ObjectWrap<Xxh64Wrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Xxh64",
                       {InstanceMethod<&Xxh64Wrap::update>("update"), InstanceMethod<&Xxh64Wrap::digest>("digest")});
  }
  explicit Xxh64Wrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Xxh64Wrap>(info) {
    hash_ = sm::Xxh64(info.Length() > 0 ? u64Arg(info[0], "seed") : 0);
  }
  sm::Xxh64& hash() { return hash_; }

 private:
  Napi::Value update(const Napi::CallbackInfo& info) {
    if (!info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "update() takes a Buffer or Uint8Array");
    auto a = info[0].As<Napi::Uint8Array>();
    hash_.update(a.Data(), a.ByteLength());
    return info.This();
  }
  Napi::Value digest(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), sm::Xxh64::hex(hash_.digest()));
  }
  sm::Xxh64 hash_;
};

// ---- File ----------------------------------------------------------------------------

class FileWrap : public Napi::ObjectWrap<FileWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "File",
                       {
                           InstanceAccessor<&FileWrap::fd>("fd"),
                           InstanceAccessor<&FileWrap::direct>("direct"),
                           InstanceAccessor<&FileWrap::ioCounts>("ioCounts"),
                           InstanceMethod<&FileWrap::read>("read"),
                           InstanceMethod<&FileWrap::write>("write"),
                           InstanceMethod<&FileWrap::readAsync>("readAsync"),
                           InstanceMethod<&FileWrap::writeAsync>("writeAsync"),
                           InstanceMethod<&FileWrap::dataExtents>("dataExtents"),
                           InstanceMethod<&FileWrap::fsync>("fsync"),
                           InstanceMethod<&FileWrap::fdatasync>("fdatasync"),
                           InstanceMethod<&FileWrap::syncfs>("syncfs"),
                           InstanceMethod<&FileWrap::truncate>("truncate"),
                           InstanceMethod<&FileWrap::cloneFrom>("cloneFrom"),
                           InstanceMethod<&FileWrap::allocate>("allocate"),
                           InstanceMethod<&FileWrap::punchHole>("punchHole"),
                           InstanceMethod<&FileWrap::stat>("stat"),
                           InstanceMethod<&FileWrap::close>("close"),
                       });
  }

  // new File(path, flags, mode, { direct, alignment })
  explicit FileWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FileWrap>(info) {
    Napi::Env env = info.Env();
    std::string path = pathArg(info[0], "path");
    sm::OpenOptions o;
    o.flags = static_cast<int>(u64Arg(info[1], "flags"));
    o.mode =
        static_cast<mode_t>(info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0644);
    Napi::Object opts = optionsArg(info, 3);
    o.direct = boolOpt(opts, "direct", false);
    o.alignment = u64Opt(opts, "alignment", 4096);
    file_ = guard(env, [&] { return std::make_shared<sm::File>(path, o); });
  }

  static sm::File& unwrap(const Napi::Value& v, const char* what) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(classes(v.Env()).file.Value()))
      throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a File");
    return *Unwrap(v.As<Napi::Object>())->file_;
  }
  static std::shared_ptr<sm::File> shared(const Napi::Value& v) { return Unwrap(v.As<Napi::Object>())->file_; }

 private:
  struct Span {
    char* data;
    size_t len;
    uint64_t position;
  };
  // (buffer, offset, length, position): the slice of buffer to transfer and the file position.
  static Span span(const Napi::CallbackInfo& info) {
    if (!info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "buffer must be a Buffer or Uint8Array");
    auto a = info[0].As<Napi::Uint8Array>();
    uint64_t off = info.Length() > 1 && !info[1].IsUndefined() ? u64Arg(info[1], "offset") : 0;
    uint64_t len = info.Length() > 2 && !info[2].IsUndefined() ? u64Arg(info[2], "length") : a.ByteLength() - off;
    if (off > a.ByteLength() || len > a.ByteLength() - off)
      throw Napi::RangeError::New(info.Env(), "offset/length outside the buffer");
    uint64_t pos = info.Length() > 3 ? u64Arg(info[3], "position") : 0;
    return {reinterpret_cast<char*>(a.Data()) + off, static_cast<size_t>(len), pos};
  }
  Napi::Value fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), file_->fd()); }
  Napi::Value direct(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), file_->direct()); }
  Napi::Value ioCounts(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("directBytes", Napi::Number::New(info.Env(), static_cast<double>(file_->directBytes())));
    o.Set("bufferedBytes", Napi::Number::New(info.Env(), static_cast<double>(file_->bufferedBytes())));
    return o;
  }
  Napi::Value read(const Napi::CallbackInfo& info) {
    Span s = span(info);
    return Napi::Number::New(
        info.Env(), static_cast<double>(guard(info.Env(), [&] { return file_->read(s.data, s.len, s.position); })));
  }
  Napi::Value write(const Napi::CallbackInfo& info) {
    Span s = span(info);
    guard(info.Env(), [&] { file_->write(s.data, s.len, s.position); });
    return Napi::Number::New(info.Env(), static_cast<double>(s.len));
  }
  Napi::Value readAsync(const Napi::CallbackInfo& info) {
    Span s = span(info);
    auto f = file_;
    return Job<size_t>::run(
        info.Env(), [f, s] { return f->read(s.data, s.len, s.position); },
        [](Napi::Env env, size_t& n) { return Napi::Number::New(env, static_cast<double>(n)); },
        {info[0], info.This()});
  }
  Napi::Value writeAsync(const Napi::CallbackInfo& info) {
    Span s = span(info);
    auto f = file_;
    return Job<size_t>::run(
        info.Env(), [f, s] { return f->write(s.data, s.len, s.position), s.len; },
        [](Napi::Env env, size_t& n) { return Napi::Number::New(env, static_cast<double>(n)); },
        {info[0], info.This()});
  }
  Napi::Value dataExtents(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t start = info.Length() > 0 ? u64Arg(info[0], "start") : 0;
    uint64_t end = info.Length() > 1 ? u64Arg(info[1], "end") : guard(env, [&] { return file_->stat().size; });
    auto extents = guard(env, [&] { return file_->dataExtents(start, end); });
    Napi::Array out = Napi::Array::New(env, extents.size());
    for (size_t i = 0; i < extents.size(); i++) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("offset", Napi::Number::New(env, static_cast<double>(extents[i].offset)));
      e.Set("length", Napi::Number::New(env, static_cast<double>(extents[i].length)));
      out[i] = e;
    }
    return out;
  }
  Napi::Value fsync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { file_->fsync(); }), info.Env().Undefined();
  }
  Napi::Value fdatasync(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { file_->fdatasync(); }), info.Env().Undefined();
  }
  Napi::Value syncfs(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { file_->syncfs(); }), info.Env().Undefined();
  }
  // cloneFrom(base) -> true when the file is now a reflink clone of base (see sm::File::cloneFrom).
  Napi::Value cloneFrom(const Napi::CallbackInfo& info) {
    std::string base = pathArg(info[0], "base");
    return Napi::Boolean::New(info.Env(),
                              guard(info.Env(), [&] { return file_->cloneFrom(base); }) == sm::File::Clone::Cloned);
  }
  Napi::Value truncate(const Napi::CallbackInfo& info) {
    uint64_t size = u64Arg(info[0], "size");
    return guard(info.Env(), [&] { file_->truncate(size); }), info.Env().Undefined();
  }
  Napi::Value allocate(const Napi::CallbackInfo& info) {
    uint64_t off = u64Arg(info[0], "offset"), len = u64Arg(info[1], "length");
    return guard(info.Env(), [&] { file_->allocate(off, len); }), info.Env().Undefined();
  }
  Napi::Value punchHole(const Napi::CallbackInfo& info) {
    uint64_t off = u64Arg(info[0], "offset"), len = u64Arg(info[1], "length");
    return guard(info.Env(), [&] { file_->punchHole(off, len); }), info.Env().Undefined();
  }
  Napi::Value stat(const Napi::CallbackInfo& info) {
    return statToJs(info.Env(), guard(info.Env(), [&] { return file_->stat(); }));
  }
  Napi::Value close(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { file_->close(); }), info.Env().Undefined();
  }

  std::shared_ptr<sm::File> file_;
};

// ---- copy and hash ---------------------------------------------------------------------

struct CopyArgs {
  std::shared_ptr<sm::File> src, dst;
  uint64_t srcOffset, dstOffset, length;
  sm::CopyOptions options;
};

// copyRange(src, dst | null, { srcOffset, dstOffset, length, bufferSize, sparse, writeChanges, hash, cancel })
CopyArgs copyArgs(const Napi::CallbackInfo& info, std::vector<Napi::Value>& keep) {
  CopyArgs a;
  FileWrap::unwrap(info[0], "src");
  a.src = FileWrap::shared(info[0]);
  if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) {
    FileWrap::unwrap(info[1], "dst");
    a.dst = FileWrap::shared(info[1]);
  }
  Napi::Object o = optionsArg(info, 2);
  a.srcOffset = u64Opt(o, "srcOffset", 0);
  a.dstOffset = u64Opt(o, "dstOffset", a.srcOffset);
  Napi::Value len = o.Get("length");
  a.length = len.IsUndefined() || len.IsNull() ? sm::kToEof : u64Arg(len, "length");
  a.options.bufferSize = u64Opt(o, "bufferSize", a.options.bufferSize);
  a.options.sparse = boolOpt(o, "sparse", false);
  a.options.writeChanges = boolOpt(o, "writeChanges", false);
  Napi::Value hash = o.Get("hash");
  if (!hash.IsUndefined() && !hash.IsNull()) {
    if (!hash.IsObject() || !hash.As<Napi::Object>().InstanceOf(classes(info.Env()).xxh64.Value()))
      throw Napi::TypeError::New(info.Env(), "hash must be an Xxh64");
    a.options.hash = &Xxh64Wrap::Unwrap(hash.As<Napi::Object>())->hash();
    keep.push_back(hash);
  }
  Napi::Value budget = o.Get("budget");
  if (!budget.IsUndefined() && !budget.IsNull()) {
    if (!budget.IsTypedArray() || budget.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array)
      throw Napi::TypeError::New(info.Env(), "budget must be a BigInt64Array (over a SharedArrayBuffer)");
    a.options.budget = reinterpret_cast<int64_t*>(budget.As<Napi::TypedArrayOf<int64_t>>().Data());
    keep.push_back(budget);
  }
  Napi::Value cancel = o.Get("cancel");
  if (!cancel.IsUndefined() && !cancel.IsNull()) {
    if (!cancel.IsTypedArray() || cancel.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw Napi::TypeError::New(
          info.Env(), "cancel must be an Int32Array (over a SharedArrayBuffer to cancel from another thread)");
    a.options.cancel = cancel.As<Napi::Int32Array>().Data();
    keep.push_back(cancel);
  }
  keep.push_back(info[0]);
  if (a.dst) keep.push_back(info[1]);
  return a;
}

Napi::Value copyResultToJs(Napi::Env env, const sm::CopyResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(r.bytes)));
  o.Set("dataBytes", Napi::Number::New(env, static_cast<double>(r.dataBytes)));
  if (r.sharedBytes) o.Set("sharedBytes", Napi::Number::New(env, static_cast<double>(r.sharedBytes)));
  return o;
}

sm::CopyResult runCopy(const CopyArgs& a) {
  return sm::copyRange(*a.src, a.dst.get(), a.srcOffset, a.dstOffset, a.length, a.options);
}

Napi::Value CopyRange(const Napi::CallbackInfo& info) {
  std::vector<Napi::Value> keep;
  CopyArgs a = copyArgs(info, keep);
  return copyResultToJs(info.Env(), guard(info.Env(), [&] { return runCopy(a); }));
}

Napi::Value CopyRangeAsync(const Napi::CallbackInfo& info) {
  std::vector<Napi::Value> keep;
  CopyArgs a = copyArgs(info, keep);
  return Job<sm::CopyResult>::run(
      info.Env(), [a] { return runCopy(a); }, [](Napi::Env env, sm::CopyResult& r) { return copyResultToJs(env, r); },
      keep);
}

// hashFile(path, { direct, bufferSize, sparse }) -> { digest, bytes }: XXH64 of the whole file.
struct HashResult {
  std::string digest;
  uint64_t bytes;
};
std::function<HashResult()> hashFileWork(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  Napi::Object o = optionsArg(info, 1);
  sm::OpenOptions open;
  open.flags = O_RDONLY;
  open.direct = boolOpt(o, "direct", false);
  sm::CopyOptions copy;
  copy.bufferSize = u64Opt(o, "bufferSize", copy.bufferSize);
  copy.sparse = boolOpt(o, "sparse", false);
  return [path, open, copy]() mutable {
    sm::File f(path, open);
    sm::Xxh64 hash;
    copy.hash = &hash;
    sm::CopyResult r = sm::copyRange(f, nullptr, 0, 0, sm::kToEof, copy);
    return HashResult{sm::Xxh64::hex(hash.digest()), r.bytes};
  };
}
Napi::Value hashResultToJs(Napi::Env env, const HashResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("digest", r.digest);
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(r.bytes)));
  return o;
}
Napi::Value HashFile(const Napi::CallbackInfo& info) {
  auto work = hashFileWork(info);
  return hashResultToJs(info.Env(), guard(info.Env(), work));
}
Napi::Value HashFileAsync(const Napi::CallbackInfo& info) {
  return Job<HashResult>::run(info.Env(), hashFileWork(info),
                              [](Napi::Env env, HashResult& r) { return hashResultToJs(env, r); });
}

// ---- batches of whole files and metadata ----------------------------------------------

sm::FsyncPolicy fsyncArg(const Napi::Object& o) {
  Napi::Value v = o.Get("fsync");
  std::string p = v.IsString() ? v.As<Napi::String>().Utf8Value() : "batch";
  if (p == "batch") return sm::FsyncPolicy::Batch;
  if (p == "file") return sm::FsyncPolicy::File;
  if (p == "none") return sm::FsyncPolicy::None;
  throw Napi::TypeError::New(o.Env(), "fsync must be 'batch', 'file' or 'none'");
}

Napi::Object outcomeErrorToJs(Napi::Env env, const sm::FileOutcome& r) {
  Napi::Object e = Napi::Object::New(env);
  e.Set("code", r.code);
  if (r.err) e.Set("errno", Napi::Number::New(env, -r.err));
  if (!r.syscall.empty()) e.Set("syscall", r.syscall);
  e.Set("path", r.path);
  e.Set("message", r.message);
  return e;
}

Napi::Value outcomeToJs(Napi::Env env, const sm::FileOutcome& r) {
  static const char* status[] = {"copied", "skipped", "linked", "unlinked", "failed"};
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", status[r.status]);
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(r.bytes)));
  o.Set("dataBytes", Napi::Number::New(env, static_cast<double>(r.dataBytes)));
  if (r.sharedBytes) o.Set("sharedBytes", Napi::Number::New(env, static_cast<double>(r.sharedBytes)));
  if (!r.digest.empty()) o.Set("digest", r.digest);
  o.Set("verified", r.verified);
  if (r.status == sm::FileOutcome::Failed) o.Set("error", outcomeErrorToJs(env, r));
  return o;
}

// The options copyFiles and linkFiles share (their first argument).
sm::BatchOptions batchOptionsArg(const Napi::CallbackInfo& info) {
  sm::BatchOptions b;
  Napi::Object o = optionsArg(info, 0);
  b.fsync = fsyncArg(o);
  b.hash = boolOpt(o, "hash", true) || boolOpt(o, "verify", false);
  b.verify = boolOpt(o, "verify", false);
  b.checksum = boolOpt(o, "checksum", false);
  b.checkExisting = boolOpt(o, "checkExisting", true);
  b.metadata.owner = boolOpt(o, "owner", geteuid() == 0);
  b.keepOsts = boolOpt(o, "keepOsts", false);
  b.reflink = boolOpt(o, "reflink", true);
  b.cloneSource = boolOpt(o, "cloneSource", true);
  b.compareXattrs = boolOpt(o, "compareXattrs", false);
  Napi::Value cancel = o.Get("cancel");
  if (cancel.IsTypedArray()) b.cancel = cancel.As<Napi::Int32Array>().Data();
  Napi::Value budget = o.Get("budget");
  if (budget.IsTypedArray()) b.budget = reinterpret_cast<int64_t*>(budget.As<Napi::TypedArrayOf<int64_t>>().Data());
  return b;
}

// copyFiles' jobs: its arguments after the options.
std::vector<sm::FileJob> batchJobsArg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> sources = pathListArg(info[1], "sources");
  std::vector<std::string> destinations = pathListArg(info[2], "destinations");
  std::vector<std::string> previous;
  if (info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull()) previous = pathListArg(info[3], "previous");
  std::vector<std::string> bases;
  if (info.Length() > 6 && !info[6].IsUndefined() && !info[6].IsNull()) bases = pathListArg(info[6], "bases");
  Napi::Array layouts = info.Length() > 4 && info[4].IsArray() ? info[4].As<Napi::Array>() : Napi::Array::New(env);
  Napi::Array records = info.Length() > 5 && info[5].IsArray() ? info[5].As<Napi::Array>() : Napi::Array::New(env);
  if (sources.size() != destinations.size() || (!previous.empty() && previous.size() != sources.size()) ||
      (!bases.empty() && bases.size() != sources.size()))
    throw Napi::RangeError::New(env, "sources, destinations, previous and bases differ in length");
  std::vector<sm::FileJob> jobs(sources.size());
  for (uint32_t i = 0; i < jobs.size(); i++) {
    if (sources[i].empty() || destinations[i].empty())
      throw toJsError(env, sm::SysError(ENOENT, "copyFiles", sources[i].empty() ? "source" : "destination"));
    jobs[i].src = std::move(sources[i]);
    jobs[i].dst = std::move(destinations[i]);
    if (!previous.empty() && !previous[i].empty()) jobs[i].prev = std::move(previous[i]);
    if (!bases.empty() && !bases[i].empty()) jobs[i].base = std::move(bases[i]);
    Napi::Value layout = i < layouts.Length() ? layouts.Get(i) : env.Undefined();
    if (!layout.IsUndefined() && !layout.IsNull()) jobs[i].layout = layoutFromJs(layout);
    Napi::Value record = i < records.Length() ? records.Get(i) : env.Undefined();
    if (record.IsString()) jobs[i].layoutRecord = record.As<Napi::String>().Utf8Value();
  }
  return jobs;
}

// copyFiles({ fsync, hash, verify, checksum, checkExisting, owner, cancel, budget },
//           sources: PathList, destinations: PathList, previous?: PathList ('' = none),
//           layouts?: (Layout | null)[], layoutRecords?: (string | null)[], bases?: PathList)
// -> [{ status, bytes, dataBytes, sharedBytes?, digest, verified, error }], one per file (see
// sm::FileJob for previous and bases). Blocks: for workers.
Napi::Value CopyFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sm::BatchOptions b = batchOptionsArg(info);
  std::vector<sm::FileJob> jobs = batchJobsArg(info);
  std::vector<sm::FileOutcome> outcomes = guard(env, [&] { return sm::copyFiles(b, jobs); });
  Napi::Array out = Napi::Array::New(env, outcomes.size());
  for (size_t i = 0; i < outcomes.size(); i++) out[i] = outcomeToJs(env, outcomes[i]);
  return out;
}

// linkFiles(options as copyFiles', directories: PathList, names: PathList, sizes: Float64Array,
//           mtimesNs: BigInt64Array, owners: Uint32Array): see sm::linkFiles.
// The files come grouped by directory: per group three directories in `directories` (where its
// files are read, where they go, the previous copy's), and their names in `names`, an empty
// name starting the next group. Per file, as scanned: its size, mtime in ns, and mode, uid, gid
// (three in `owners`). The answer is compact, for the 10^5 unchanged files of a snapshot:
// { statuses: Uint8Array (0 linked, 1 skipped, 2 left, 3 failed), failures: [{ index, error }] },
// in the order of the names. Blocks: for workers.
Napi::Value LinkFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sm::BatchOptions b = batchOptionsArg(info);
  std::vector<std::string> dirs = pathListArg(info[1], "directories");
  std::vector<std::string> names = pathListArg(info[2], "names");
  if (dirs.empty() || dirs.size() % 3 != 0)
    throw Napi::RangeError::New(env, "linkFiles: directories come in threes (source, destination, previous)");
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      !info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array ||
      !info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw Napi::TypeError::New(env,
                               "linkFiles: sizes, mtimesNs and owners must be Float64, BigInt64 and Uint32 arrays");
  auto sizes = info[3].As<Napi::Float64Array>();
  auto mtimes = info[4].As<Napi::TypedArrayOf<int64_t>>();
  auto owners = info[5].As<Napi::Uint32Array>();
  std::vector<sm::LinkGroup> groups(dirs.size() / 3);
  for (size_t k = 0; k < dirs.size(); k += 3) {
    groups[k / 3].srcDir = std::move(dirs[k]);
    groups[k / 3].dstDir = std::move(dirs[k + 1]);
    groups[k / 3].prevDir = std::move(dirs[k + 2]);
  }
  size_t g = 0, files = 0;
  for (std::string& name : names) {
    if (name.empty()) {
      if (++g == groups.size()) break;  // more groups of names than of directories: refused below
      continue;
    }
    if (name.find('/') != std::string::npos || name == "." || name == "..")
      throw Napi::TypeError::New(env, "linkFiles: a name must be one entry of its directory");
    if (files >= sizes.ElementLength() || files >= mtimes.ElementLength() || 3 * files + 2 >= owners.ElementLength())
      throw Napi::RangeError::New(env, "linkFiles: sizes, mtimesNs and owners do not match the names in length");
    sm::FileStat st{};
    st.size = static_cast<uint64_t>(sizes[files]);
    int64_t ns = mtimes[files];
    st.mtimeSec = ns >= 0 ? ns / 1000000000 : -((-ns + 999999999) / 1000000000);  // floor
    st.mtimeNsec = static_cast<uint32_t>(ns - st.mtimeSec * 1000000000);
    st.mode = owners[3 * files] | S_IFREG;
    st.uid = owners[3 * files + 1];
    st.gid = owners[3 * files + 2];
    files++;
    groups[g].names.push_back(std::move(name));
    groups[g].scanned.push_back(st);
  }
  if (g + 1 != groups.size()) throw Napi::RangeError::New(env, "linkFiles: names and directories differ in groups");
  if (files != sizes.ElementLength() || files != mtimes.ElementLength() || 3 * files != owners.ElementLength())
    throw Napi::RangeError::New(env, "linkFiles: sizes, mtimesNs and owners do not match the names in length");
  std::vector<sm::FileOutcome> outcomes = guard(env, [&] { return sm::linkFiles(b, groups); });
  Napi::Uint8Array statuses = Napi::Uint8Array::New(env, outcomes.size());
  Napi::Array failures = Napi::Array::New(env);
  for (size_t i = 0; i < outcomes.size(); i++) {
    const sm::FileOutcome& r = outcomes[i];
    statuses[i] = r.status == sm::FileOutcome::Linked    ? 0
                  : r.status == sm::FileOutcome::Skipped ? 1
                  : r.status == sm::FileOutcome::Failed  ? 3
                                                         : 2;
    if (r.status != sm::FileOutcome::Failed) continue;
    Napi::Object f = Napi::Object::New(env);
    f.Set("index", Napi::Number::New(env, static_cast<double>(i)));
    f.Set("error", outcomeErrorToJs(env, r));
    failures[failures.Length()] = f;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("statuses", statuses);
  out.Set("failures", failures);
  return out;
}

// tempPath(path, source?) -> where a file is written before its rename, when it cannot be
// nameless; a name the source's directory holds is passed over.
Napi::Value TempPath(const Napi::CallbackInfo& info) {
  std::string t = sm::tempPath(pathArg(info[0], "path"),
                               info.Length() > 1 && !info[1].IsUndefined() ? pathArg(info[1], "source") : "");
  return Napi::Buffer<char>::Copy(info.Env(), t.data(), t.size());
}

// copyMetadata(src, dst, { owner }): src's owner (as root), mode, xattrs and times onto dst,
// neither path followed if it is a symlink.
Napi::Value CopyMetadata(const Napi::CallbackInfo& info) {
  std::string src = pathArg(info[0], "src"), dst = pathArg(info[1], "dst");
  sm::MetadataOptions m;
  m.owner = boolOpt(optionsArg(info, 2), "owner", geteuid() == 0);
  guard(info.Env(), [&] { sm::copyMetadataPath(src, dst, sm::statPath(src, false), m); });
  return info.Env().Undefined();
}

// sameXattrs(a, b): whether two paths carry the same xattrs and ACLs, as a copy carries them.
Napi::Value SameXattrs(const Napi::CallbackInfo& info) {
  std::string a = pathArg(info[0], "a"), b = pathArg(info[1], "b");
  bool same = false;
  guard(info.Env(), [&] { same = sm::copiedXattrs(a) == sm::copiedXattrs(b); });
  return Napi::Boolean::New(info.Env(), same);
}

// ---- buffers and path calls ------------------------------------------------------------

// alignedBuffer(size, alignment = 4096): a Buffer over aligned memory, no copy.
Napi::Value AlignedBufferFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t size = u64Arg(info[0], "size");
  size_t alignment = info.Length() > 1 && !info[1].IsUndefined() ? u64Arg(info[1], "alignment") : 4096;
  void* p = guard(env, [&] { return sm::allocAligned(size, alignment); });
  return Napi::Buffer<char>::New(env, static_cast<char*>(p), size, [](Napi::Env, char* d) { sm::freeAligned(d); });
}

Napi::Value Stat(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  bool follow = boolOpt(optionsArg(info, 1), "follow", false);
  return statToJs(info.Env(), guard(info.Env(), [&] { return sm::statPath(path, follow); }));
}

Napi::Value StatAsync(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  bool follow = boolOpt(optionsArg(info, 1), "follow", false);
  return Job<sm::FileStat>::run(
      info.Env(), [path, follow] { return sm::statPath(path, follow); },
      [](Napi::Env env, sm::FileStat& s) -> Napi::Value { return statToJs(env, s); });
}

Napi::Value ListXattrs(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  auto names = guard(info.Env(), [&] { return sm::listXattrs(path); });
  Napi::Array out = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); i++) out[i] = Napi::String::New(info.Env(), names[i]);
  return out;
}

Napi::Value GetXattr(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path"), name = bytesArg(info[1], "name");
  return bytes(info.Env(), guard(info.Env(), [&] { return sm::getXattr(path, name); }));
}

Napi::Value SetXattr(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path"), name = bytesArg(info[1], "name"), value = bytesArg(info[2], "value");
  int flags = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 0;
  guard(info.Env(), [&] { sm::setXattr(path, name, value, flags); });
  return info.Env().Undefined();
}

Napi::Value RemoveXattr(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path"), name = bytesArg(info[1], "name");
  guard(info.Env(), [&] { sm::removeXattr(path, name); });
  return info.Env().Undefined();
}

// setTimes(path, atimeNs, mtimeNs, { follow }): bigint nanoseconds; null leaves a time unchanged.
Napi::Value SetTimes(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  sm::Timespec at = timespecFromNs(info[1], "atimeNs"), mt = timespecFromNs(info[2], "mtimeNs");
  bool follow = boolOpt(optionsArg(info, 3), "follow", false);
  guard(info.Env(), [&] { sm::setTimes(path, at, mt, follow); });
  return info.Env().Undefined();
}

Napi::Value Lchown(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  uid_t uid = info[1].As<Napi::Number>().Uint32Value();
  gid_t gid = info[2].As<Napi::Number>().Uint32Value();
  guard(info.Env(), [&] { sm::lchown(path, uid, gid); });
  return info.Env().Undefined();
}

Napi::Value Chmod(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  mode_t mode = info[1].As<Napi::Number>().Uint32Value();
  guard(info.Env(), [&] { sm::chmod(path, mode); });
  return info.Env().Undefined();
}

Napi::Value Mknod(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  mode_t mode = info[1].As<Napi::Number>().Uint32Value();
  dev_t dev = info.Length() > 2 ? u64Arg(info[2], "dev") : 0;
  guard(info.Env(), [&] { sm::mknod(path, mode, dev); });
  return info.Env().Undefined();
}

Napi::Value Mkfifo(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  mode_t mode = info.Length() > 1 ? info[1].As<Napi::Number>().Uint32Value() : 0644;
  guard(info.Env(), [&] { sm::mkfifo(path, mode); });
  return info.Env().Undefined();
}

Napi::Value Readlink(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  return bytes(info.Env(), guard(info.Env(), [&] { return sm::readlink(path); }));
}

Napi::Value Symlink(const Napi::CallbackInfo& info) {
  std::string target = pathArg(info[0], "target"), path = pathArg(info[1], "path");
  guard(info.Env(), [&] { sm::symlink(target, path); });
  return info.Env().Undefined();
}

Napi::Value Link(const Napi::CallbackInfo& info) {
  std::string existing = pathArg(info[0], "existingPath"), path = pathArg(info[1], "newPath");
  guard(info.Env(), [&] { sm::link(existing, path); });
  return info.Env().Undefined();
}

// makeDirsAsync(paths: PathList, mode) -> Promise<[{ index, error }]>: sm::makeDir on each, in
// order (parents first), on the libuv pool; a failure is reported and the rest are still made.
Napi::Value MakeDirsAsync(const Napi::CallbackInfo& info) {
  using Failures = std::vector<std::pair<size_t, sm::SysError>>;
  std::vector<std::string> paths = pathListArg(info[0], "paths");
  mode_t mode = info[1].As<Napi::Number>().Uint32Value();
  return Job<Failures>::run(
      info.Env(),
      [paths = std::move(paths), mode] {
        Failures failures;
        for (size_t i = 0; i < paths.size(); i++) {
          try {
            sm::makeDir(paths[i], mode);
          } catch (const sm::SysError& e) {
            failures.emplace_back(i, e);
          }
        }
        return failures;
      },
      [](Napi::Env env, Failures& failures) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, failures.size());
        for (size_t k = 0; k < failures.size(); k++) {
          Napi::Object f = Napi::Object::New(env);
          f.Set("index", Napi::Number::New(env, static_cast<double>(failures[k].first)));
          f.Set("error", toJsError(env, failures[k].second).Value());
          out[k] = f;
        }
        return out;
      });
}

Napi::Value MakeDev(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(makedev(info[0].As<Napi::Number>().Uint32Value(),
                                                                   info[1].As<Napi::Number>().Uint32Value())));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function file = FileWrap::define(env);
  Napi::Function xxh64 = Xxh64Wrap::define(env);
  env.SetInstanceData<Classes>(new Classes{Napi::Persistent(file), Napi::Persistent(xxh64)});
  exports.Set("File", file);
  exports.Set("Xxh64", xxh64);
  exports.Set("alignedBuffer", Napi::Function::New<AlignedBufferFn>(env));
  exports.Set("copyRange", Napi::Function::New<CopyRange>(env));
  exports.Set("copyRangeAsync", Napi::Function::New<CopyRangeAsync>(env));
  exports.Set("hashFile", Napi::Function::New<HashFile>(env));
  exports.Set("hashFileAsync", Napi::Function::New<HashFileAsync>(env));
  exports.Set("copyFiles", Napi::Function::New<CopyFiles>(env));
  exports.Set("linkFiles", Napi::Function::New<LinkFiles>(env));
  exports.Set("tempPath", Napi::Function::New<TempPath>(env));
  exports.Set("copyMetadata", Napi::Function::New<CopyMetadata>(env));
  exports.Set("sameXattrs", Napi::Function::New<SameXattrs>(env));
  exports.Set("stat", Napi::Function::New<Stat>(env));
  exports.Set("statAsync", Napi::Function::New<StatAsync>(env));
  exports.Set("listXattrs", Napi::Function::New<ListXattrs>(env));
  exports.Set("getXattr", Napi::Function::New<GetXattr>(env));
  exports.Set("setXattr", Napi::Function::New<SetXattr>(env));
  exports.Set("removeXattr", Napi::Function::New<RemoveXattr>(env));
  exports.Set("setTimes", Napi::Function::New<SetTimes>(env));
  exports.Set("lchown", Napi::Function::New<Lchown>(env));
  exports.Set("chmod", Napi::Function::New<Chmod>(env));
  exports.Set("mknod", Napi::Function::New<Mknod>(env));
  exports.Set("mkfifo", Napi::Function::New<Mkfifo>(env));
  exports.Set("readlink", Napi::Function::New<Readlink>(env));
  exports.Set("symlink", Napi::Function::New<Symlink>(env));
  exports.Set("link", Napi::Function::New<Link>(env));
  exports.Set("makeDirsAsync", Napi::Function::New<MakeDirsAsync>(env));
  exports.Set("makedev", Napi::Function::New<MakeDev>(env));
  registerScan(env, exports);
  registerLustre(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(stripemover, Init)
