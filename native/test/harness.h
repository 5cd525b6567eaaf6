// A very small test harness for the C++ core: TEST(name) registers a test, CHECK* record a
// failure and go on, REQUIRE* record it and end the test. The runner prints one line per test
// and "N passed, N failed" last; it exits non-zero when anything failed.
//
// KNOWN_BUG(cond, what) documents a bug found in native/src without turning the suite red:
// cond is the correct behaviour. While it is false the check counts as an expected failure
// (reported, not failed); once the bug is fixed it fails ("fixed? make it a CHECK") so the
// marker cannot outlive the bug.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include "sys_error.h"

namespace t {

struct Abort {};  // thrown by REQUIRE* to end the current test

void registerTest(const char* name, void (*fn)());
void fail(const char* file, int line, const std::string& message);
void knownBug(const char* file, int line, bool fixed, const std::string& what);
void note(const std::string& message);  // printed under the test's result line
void skip(const std::string& why);      // marks the current test as skipped (still passes)

struct Registrar {
  Registrar(const char* name, void (*fn)()) { registerTest(name, fn); }
};

// Printable form of a value for failure messages.
std::string quote(const std::string& s);
template <typename T>
std::string show(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_enum_v<T>) {
    return std::to_string(static_cast<long long>(v));
  } else if constexpr (std::is_arithmetic_v<T>) {
    return std::to_string(v);
  } else if constexpr (std::is_convertible_v<T, std::string>) {
    return quote(std::string(v));
  } else if constexpr (std::is_pointer_v<T>) {
    std::ostringstream o;
    o << static_cast<const void*>(v);
    return o.str();
  } else {
    return "<value>";
  }
}

// Runs f and returns the SysError it threw, or nothing if it returned normally. Any other
// exception propagates (the runner reports it as a failure).
template <typename F>
std::optional<sm::SysError> catchSys(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const sm::SysError& e) {
    return e;
  }
  return std::nullopt;
}

// ---- files and directories ----------------------------------------------------------------

// A fresh directory made with mkdtemp under base, removed (recursively) with the object
// unless SM_KEEP_TMP is set.
class TempDir {
 public:
  explicit TempDir(const std::string& base);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The two file systems every I/O test runs on: a disk (/var/tmp) and tmpfs (/dev/shm).
const char* const kBases[] = {"/var/tmp", "/dev/shm"};

// Deterministic pseudo-random bytes.
std::string pattern(size_t n, uint64_t seed);
void fillPattern(char* p, size_t n, uint64_t seed);

// Plain POSIX helpers that do not go through the code under test.
std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& data, off_t offset = 0, bool truncate = true);
uint64_t xxh64(const void* p, size_t n);

// Runs fn in a forked child; returns its wait status. Whatever the child writes to stderr
// is captured into *err when err is given.
int runInChild(const std::function<int()>& fn, std::string* err = nullptr);

bool asanBuild();

}  // namespace t

#define SM_CAT2(a, b) a##b
#define SM_CAT(a, b) SM_CAT2(a, b)

#define TEST(name)                                              \
  static void name();                                           \
  static ::t::Registrar SM_CAT(registrar_, name)(#name, &name); \
  static void name()

#define CHECK(cond)                                                 \
  do {                                                              \
    if (!(cond)) ::t::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define REQUIRE(cond)                                      \
  do {                                                     \
    if (!(cond)) {                                         \
      ::t::fail(__FILE__, __LINE__, "REQUIRE(" #cond ")"); \
      throw ::t::Abort{};                                  \
    }                                                      \
  } while (0)

#define SM_CHECK_OP(kind, a, op, b, abort)                                                                    \
  do {                                                                                                        \
    const auto& sm_a_ = (a);                                                                                  \
    const auto& sm_b_ = (b);                                                                                  \
    if (!(sm_a_ op sm_b_)) {                                                                                  \
      ::t::fail(__FILE__, __LINE__,                                                                           \
                kind "(" #a ", " #b "): " + ::t::show(sm_a_) + " " #op " " + ::t::show(sm_b_) + " is false"); \
      if (abort) throw ::t::Abort{};                                                                          \
    }                                                                                                         \
  } while (0)

#define CHECK_EQ(a, b) SM_CHECK_OP("CHECK_EQ", a, ==, b, false)
#define CHECK_NE(a, b) SM_CHECK_OP("CHECK_NE", a, !=, b, false)
#define CHECK_LE(a, b) SM_CHECK_OP("CHECK_LE", a, <=, b, false)
#define CHECK_LT(a, b) SM_CHECK_OP("CHECK_LT", a, <, b, false)
#define CHECK_GE(a, b) SM_CHECK_OP("CHECK_GE", a, >=, b, false)
#define CHECK_GT(a, b) SM_CHECK_OP("CHECK_GT", a, >, b, false)
#define REQUIRE_EQ(a, b) SM_CHECK_OP("REQUIRE_EQ", a, ==, b, true)
#define REQUIRE_GE(a, b) SM_CHECK_OP("REQUIRE_GE", a, >=, b, true)

// Byte strings compared without printing megabytes: reports the first difference.
#define CHECK_BYTES_EQ(a, b)                                                                               \
  do {                                                                                                     \
    const std::string& sm_x_ = (a);                                                                        \
    const std::string& sm_y_ = (b);                                                                        \
    if (sm_x_ != sm_y_) {                                                                                  \
      size_t sm_i_ = 0;                                                                                    \
      while (sm_i_ < sm_x_.size() && sm_i_ < sm_y_.size() && sm_x_[sm_i_] == sm_y_[sm_i_]) sm_i_++;        \
      ::t::fail(__FILE__, __LINE__,                                                                        \
                "CHECK_BYTES_EQ(" #a ", " #b "): sizes " + std::to_string(sm_x_.size()) + " and " +        \
                    std::to_string(sm_y_.size()) + ", first difference at byte " + std::to_string(sm_i_)); \
    }                                                                                                      \
  } while (0)

// expr must throw sm::SysError with this errno and syscall; evaluates to the error (or nullopt).
#define CHECK_SYSERROR(expr, errno_, syscall_)                                                                    \
  ([&]() -> std::optional<sm::SysError> {                                                                         \
    auto sm_e_ = ::t::catchSys([&] { (void)(expr); });                                                            \
    if (!sm_e_) {                                                                                                 \
      ::t::fail(__FILE__, __LINE__, "CHECK_SYSERROR(" #expr "): no SysError thrown");                             \
    } else if (sm_e_->err != (errno_) || sm_e_->syscall != (syscall_)) {                                          \
      ::t::fail(__FILE__, __LINE__,                                                                               \
                "CHECK_SYSERROR(" #expr "): got " + sm_e_->code() + "/" + sm_e_->syscall + " (" + sm_e_->what() + \
                    "), want " #errno_ "/" + std::string(syscall_));                                              \
    }                                                                                                             \
    return sm_e_;                                                                                                 \
  }())

#define KNOWN_BUG(cond, what) ::t::knownBug(__FILE__, __LINE__, static_cast<bool>(cond), what)
