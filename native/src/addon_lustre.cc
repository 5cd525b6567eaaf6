// The N-API surface of lustre.h, registered by registerLustre (called from addon.cc's Init) as
// `lustre`: status, isLustre, layout/layoutsAsync, createFile, pathToFid, fidToPath. Layouts
// cross into JS as plain objects (src/layout/model.ts): stripeCount 0 = default, -1 = all OSTs;
// stripeSize 0 = default; end null = to the end of the file.
#include <fcntl.h>
#include <napi.h>
#include <unistd.h>

#include <variant>

#include "lustre.h"
#include "napi_util.h"
#include "sys_error.h"

namespace {

using namespace sm::js;
namespace L = sm::lustre;

Napi::Value countToJs(Napi::Env env, uint64_t v) {
  if (v == L::kLayoutDefault) return Napi::Number::New(env, 0);
  if (v == L::kLayoutWide) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, static_cast<double>(v));
}

uint64_t countFromJs(const Napi::Value& v, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return L::kLayoutDefault;
  int64_t n = i64Arg(v, what);
  return n == 0 ? L::kLayoutDefault : n == -1 ? L::kLayoutWide : static_cast<uint64_t>(n);
}

Napi::Object layoutToJs(Napi::Env env, const L::Layout& l) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("composite", l.composite);
  Napi::Array comps = Napi::Array::New(env, l.components.size());
  for (size_t i = 0; i < l.components.size(); i++) {
    const L::Component& c = l.components[i];
    Napi::Object jc = Napi::Object::New(env);
    jc.Set("start", Napi::Number::New(env, static_cast<double>(c.start)));
    jc.Set("end", c.end == L::kExtentEof ? env.Null() : Napi::Number::New(env, static_cast<double>(c.end)));
    jc.Set("pattern", Napi::Number::New(env, static_cast<double>(c.pattern)));
    jc.Set("stripeSize", countToJs(env, c.stripeSize));
    jc.Set("stripeCount", countToJs(env, c.stripeCount));
    jc.Set("flags", c.flags);
    jc.Set("pool", c.pool);
    Napi::Array osts = Napi::Array::New(env, c.osts.size());
    for (size_t k = 0; k < c.osts.size(); k++) osts.Set(k, Napi::Number::New(env, static_cast<double>(c.osts[k])));
    jc.Set("osts", osts);
    comps.Set(i, jc);
  }
  o.Set("components", comps);
  return o;
}

}  // namespace

namespace sm::js {

L::Layout layoutFromJs(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw Napi::TypeError::New(env, "layout must be an object");
  auto o = v.As<Napi::Object>();
  L::Layout l;
  l.composite = o.Get("composite").ToBoolean();
  Napi::Value cv = o.Get("components");
  if (!cv.IsArray() || cv.As<Napi::Array>().Length() == 0)
    throw Napi::TypeError::New(env, "layout.components must be a non-empty array");
  auto comps = cv.As<Napi::Array>();
  for (uint32_t i = 0; i < comps.Length(); i++) {
    auto jc = comps.Get(i).As<Napi::Object>();
    L::Component c;
    c.start = u64Opt(jc, "start", 0);
    Napi::Value end = jc.Get("end");
    c.end = end.IsNull() || end.IsUndefined() ? L::kExtentEof : u64Arg(end, "end");
    c.pattern = u64Opt(jc, "pattern", 0);
    c.stripeSize =
        jc.Get("stripeSize").IsUndefined() ? L::kLayoutDefault : countFromJs(jc.Get("stripeSize"), "stripeSize");
    c.stripeCount = countFromJs(jc.Get("stripeCount"), "stripeCount");
    c.flags = static_cast<uint32_t>(u64Opt(jc, "flags", 0));
    if (jc.Get("pool").IsString()) c.pool = jc.Get("pool").As<Napi::String>().Utf8Value();
    if (jc.Get("osts").IsArray()) {
      auto osts = jc.Get("osts").As<Napi::Array>();
      for (uint32_t k = 0; k < osts.Length(); k++) c.osts.push_back(u64Arg(osts.Get(k), "ost index"));
    }
    l.components.push_back(std::move(c));
  }
  return l;
}

}  // namespace sm::js

namespace {

Napi::Value Status(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const L::Status& s = L::status();
  Napi::Object o = Napi::Object::New(env);
  o.Set("loaded", s.loaded);
  o.Set("library", s.library);
  if (!s.loaded) o.Set("error", s.error);
  Napi::Array missing = Napi::Array::New(env, s.missing.size());
  for (size_t i = 0; i < s.missing.size(); i++) missing.Set(i, s.missing[i]);
  o.Set("missing", missing);
  return o;
}

Napi::Value IsLustre(const Napi::CallbackInfo& info) {
  std::string path = pathArg(info[0], "path");
  return Napi::Boolean::New(info.Env(), guard(info.Env(), [&] { return L::isLustre(path); }));
}

// layout(path) or layout(fd)
Napi::Value Layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info[0].IsNumber()) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    return layoutToJs(env, guard(env, [&] { return L::layoutOfFd(fd, "fd " + std::to_string(fd)); }));
  }
  std::string path = pathArg(info[0], "path");
  return layoutToJs(env, guard(env, [&] { return L::layoutOf(path); }));
}

// layoutsAsync(paths): the layout of each, or its error, read on the libuv pool.
Napi::Value LayoutsAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "paths must be an array");
  auto arr = info[0].As<Napi::Array>();
  std::vector<std::string> paths;
  for (uint32_t i = 0; i < arr.Length(); i++) paths.push_back(pathArg(arr.Get(i), "path"));
  using Result = std::vector<std::variant<L::Layout, sm::SysError>>;
  return Job<Result>::run(
      env,
      [paths = std::move(paths)] {
        Result out;
        out.reserve(paths.size());
        for (const std::string& p : paths) {
          try {
            out.emplace_back(L::layoutOf(p));
          } catch (const sm::SysError& e) {
            out.emplace_back(e);
          }
        }
        return out;
      },
      [](Napi::Env env, Result& r) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, r.size());
        for (size_t i = 0; i < r.size(); i++) {
          if (auto* l = std::get_if<L::Layout>(&r[i]))
            a.Set(i, layoutToJs(env, *l));
          else
            a.Set(i, toJsError(env, std::get<sm::SysError>(r[i])).Value());
        }
        return a;
      });
}

// createFile(path, layout, { keepOsts, mode, size, exclusive }): makes the file with that
// layout, sized (sparse) to `size`, and closes it.
Napi::Value CreateFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = pathArg(info[0], "path");
  L::Layout layout = layoutFromJs(info[1]);
  Napi::Object o = optionsArg(info, 2);
  bool keep = boolOpt(o, "keepOsts", false);
  auto mode = static_cast<mode_t>(u64Opt(o, "mode", 0600));
  uint64_t size = u64Opt(o, "size", 0);
  int flags = O_WRONLY | O_CLOEXEC | (boolOpt(o, "exclusive", true) ? O_EXCL : 0);
  guard(env, [&] {
    int fd = L::createWithLayout(path, flags, mode, layout, keep);
    if (size > 0 && ftruncate(fd, static_cast<off_t>(size)) != 0) {
      int err = errno;
      close(fd);
      throw sm::SysError(err, "ftruncate", path);
    }
    if (close(fd) != 0) sm::throwErrno("close", path);
  });
  return env.Undefined();
}

Napi::Value PathToFid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info[0].IsNumber()) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    return Napi::String::New(env, guard(env, [&] { return L::fdToFid(fd, "fd " + std::to_string(fd)).text(); }));
  }
  std::string path = pathArg(info[0], "path");
  return Napi::String::New(env, guard(env, [&] { return L::pathToFid(path).text(); }));
}

// fidToPath(mountPoint, fid, linkno = 0) -> the path bytes, relative to the mount point.
Napi::Value FidToPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string mnt = pathArg(info[0], "mountPoint");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "fid must be a string like [0x200000400:0x1:0x0]");
  std::string text = info[1].As<Napi::String>().Utf8Value();
  int linkno = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
  return bytes(env, guard(env, [&] { return L::fidToPath(mnt, L::parseFid(text), linkno); }));
}

}  // namespace

void registerLustre(Napi::Env env, Napi::Object exports) {
  Napi::Object lustre = Napi::Object::New(env);
  lustre.Set("status", Napi::Function::New<Status>(env));
  lustre.Set("isLustre", Napi::Function::New<IsLustre>(env));
  lustre.Set("layout", Napi::Function::New<Layout>(env));
  lustre.Set("layoutsAsync", Napi::Function::New<LayoutsAsync>(env));
  lustre.Set("createFile", Napi::Function::New<CreateFile>(env));
  lustre.Set("pathToFid", Napi::Function::New<PathToFid>(env));
  lustre.Set("fidToPath", Napi::Function::New<FidToPath>(env));
  exports.Set("lustre", lustre);
}
