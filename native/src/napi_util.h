// N-API helpers shared by the addon's surfaces (addon.cc, addon_scan.cc): argument
// conversion, errors as {code, errno, syscall, path, message}, and async jobs on the libuv pool.
#pragma once
#include <napi.h>
#include <sys/stat.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "file.h"
#include "fs_ops.h"
#include "lustre.h"
#include "sys_error.h"

namespace sm::js {

// A layout object from JS (src/layout/model.ts); defined in addon_lustre.cc.
sm::lustre::Layout layoutFromJs(const Napi::Value& v);

using sm::SysError;

// {code, errno, syscall, path, message}, as Node's fs errors; errno negative like libuv's.
// rawPath keeps the exact bytes when the path is not valid UTF-8.
inline Napi::Error toJsError(Napi::Env env, const SysError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", e.code());
  err.Set("errno", Napi::Number::New(env, -e.err));
  err.Set("syscall", e.syscall);
  if (!e.path.empty()) {
    std::string shown = sm::displayPath(e.path);
    err.Set("path", shown);
    if (shown != e.path) err.Set("rawPath", Napi::Buffer<char>::Copy(env, e.path.data(), e.path.size()));
  }
  return err;
}

// Runs fn, turning a SysError into the JS exception above.
template <typename Fn>
inline auto guard(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const SysError& e) {
    throw toJsError(env, e);
  }
}

// A path argument: a Buffer (any bytes) or a string (UTF-8). NUL bytes are refused.
inline std::string pathArg(const Napi::Value& v, const char* what) {
  std::string s;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    auto b = v.As<Napi::Uint8Array>();  // a Buffer, or a Uint8Array that crossed a worker boundary
    s.assign(reinterpret_cast<const char*>(b.Data()), b.ByteLength());
  } else if (v.IsString()) {
    s = v.As<Napi::String>().Utf8Value();
  } else {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Buffer or a string");
  }
  if (s.find('\0') != std::string::npos)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must not contain NUL bytes");
  if (s.empty()) throw toJsError(v.Env(), SysError(ENOENT, what, ""));
  return s;
}

// A path list (src/targets/posix/paths.ts PathList): paths each ended by a NUL, in one
// Uint8Array, so that a batch crosses a worker boundary as one copy. An empty path is "none".
inline std::vector<std::string> pathListArg(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a path list (Uint8Array)");
  auto b = v.As<Napi::Uint8Array>();
  const char* p = reinterpret_cast<const char*>(b.Data());
  const char* end = p + b.ByteLength();
  if (p != end && end[-1] != '\0')
    throw Napi::TypeError::New(v.Env(), std::string(what) + ": a path list ends with a NUL");
  std::vector<std::string> out;
  while (p < end) {
    size_t n = std::char_traits<char>::length(p);
    out.emplace_back(p, n);
    p += n + 1;
  }
  return out;
}

inline Napi::Buffer<char> bytes(Napi::Env env, const std::string& s) {
  return Napi::Buffer<char>::Copy(env, s.data(), s.size());
}

inline std::string bytesArg(const Napi::Value& v, const char* what) {
  if (v.IsTypedArray()) {
    auto a = v.As<Napi::Uint8Array>();
    return std::string(reinterpret_cast<char*>(a.Data()), a.ByteLength());
  }
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Buffer or a string");
}

inline uint64_t u64Arg(const Napi::Value& v, const char* what) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 0)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a non-negative number");
  return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
}

inline int64_t i64Arg(const Napi::Value& v, const char* what) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number or bigint");
  return v.As<Napi::Number>().Int64Value();
}

inline Napi::Object optionsArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() > i && info[i].IsObject()) return info[i].As<Napi::Object>();
  return Napi::Object::New(info.Env());
}

inline bool boolOpt(const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? dflt : v.ToBoolean().Value();
}

inline uint64_t u64Opt(const Napi::Object& o, const char* key, uint64_t dflt) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? dflt : u64Arg(v, key);
}

// Seconds + nanoseconds as one bigint of nanoseconds, without overflowing for far dates.
inline Napi::BigInt nsBigInt(Napi::Env env, int64_t sec, uint32_t nsec) {
  __int128 ns = static_cast<__int128>(sec) * 1000000000 + nsec;
  int sign = ns < 0;
  unsigned __int128 mag = sign ? -static_cast<unsigned __int128>(ns) : static_cast<unsigned __int128>(ns);
  uint64_t words[2] = {static_cast<uint64_t>(mag), static_cast<uint64_t>(mag >> 64)};
  return Napi::BigInt::New(env, sign, words[1] ? 2 : 1, words);
}

// A bigint (or number) of nanoseconds since the epoch; 128-bit so that dates past 2262 work.
inline sm::Timespec timespecFromNs(const Napi::Value& v, const char* what) {
  if (v.IsNull() || v.IsUndefined()) return {0, UTIME_OMIT};
  __int128 ns;
  if (v.IsBigInt()) {
    auto b = v.As<Napi::BigInt>();
    int sign = 0;
    size_t count = 2;
    uint64_t words[2] = {0, 0};
    if (b.WordCount() > 2) throw Napi::RangeError::New(v.Env(), std::string(what) + " is out of range");
    b.ToWords(&sign, &count, words);
    unsigned __int128 mag = (static_cast<unsigned __int128>(words[1]) << 64) | words[0];
    ns = sign ? -static_cast<__int128>(mag) : static_cast<__int128>(mag);
  } else {
    ns = i64Arg(v, what);
  }
  __int128 sec = ns / 1000000000, nsec = ns % 1000000000;
  if (nsec < 0) sec -= 1, nsec += 1000000000;
  return {static_cast<int64_t>(sec), static_cast<int64_t>(nsec)};
}

inline Napi::Object statToJs(Napi::Env env, const sm::FileStat& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("dev", Napi::Number::New(env, static_cast<double>(s.dev)));
  o.Set("ino", Napi::BigInt::New(env, s.ino));
  o.Set("mode", s.mode);
  o.Set("nlink", s.nlink);
  o.Set("uid", s.uid);
  o.Set("gid", s.gid);
  o.Set("rdev", Napi::Number::New(env, static_cast<double>(s.rdev)));
  o.Set("size", Napi::Number::New(env, static_cast<double>(s.size)));
  o.Set("blocks", Napi::Number::New(env, static_cast<double>(s.blocks)));
  o.Set("blksize", s.blksize);
  o.Set("atimeNs", nsBigInt(env, s.atimeSec, s.atimeNsec));
  o.Set("mtimeNs", nsBigInt(env, s.mtimeSec, s.mtimeNsec));
  o.Set("ctimeNs", nsBigInt(env, s.ctimeSec, s.ctimeNsec));
  o.Set("birthtimeNs", nsBigInt(env, s.btimeSec, s.btimeNsec));
  return o;
}

// Runs `work` on the libuv pool and settles a promise with `toJs(result)`. `keep` pins the
// JS objects (buffers, files) the work touches until it is done.
template <typename R>
class Job : public Napi::AsyncWorker {
 public:
  using Work = std::function<R()>;
  using ToJs = std::function<Napi::Value(Napi::Env, R&)>;
  static Napi::Promise run(Napi::Env env, Work work, ToJs toJs, std::vector<Napi::Value> keep = {}) {
    auto* job = new Job(env, std::move(work), std::move(toJs));
    for (auto& v : keep) job->keep_.push_back(Napi::Persistent(v));
    job->Queue();
    return job->deferred_.Promise();
  }

 private:
  Job(Napi::Env env, Work work, ToJs toJs)
      : Napi::AsyncWorker(env, "stripemover"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        toJs_(std::move(toJs)) {}
  void Execute() override {
    try {
      result_ = std::make_unique<R>(work_());
    } catch (const SysError& e) {
      error_ = std::make_unique<SysError>(e);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (error_) return deferred_.Reject(toJsError(env, *error_).Value());
    try {
      deferred_.Resolve(toJs_(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  Work work_;
  ToJs toJs_;
  std::unique_ptr<R> result_;
  std::unique_ptr<SysError> error_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
};

}  // namespace sm::js
