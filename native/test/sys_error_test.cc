// sm::SysError, sm::displayPath and sm::allocAligned.
#include <fcntl.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "aligned_buffer.h"
#include "file.h"
#include "harness.h"

TEST(sys_error_for_a_missing_file) {
  t::TempDir dir("/var/tmp");
  std::string missing = dir / "no-such-file";
  sm::OpenOptions o;
  o.flags = O_RDONLY;
  auto e = CHECK_SYSERROR(sm::File(missing, o), ENOENT, "open");
  REQUIRE(e.has_value());
  CHECK_EQ(e->err, ENOENT);
  CHECK_EQ(e->syscall, std::string("open"));
  CHECK_EQ(e->path, missing);
  CHECK_EQ(e->code(), std::string("ENOENT"));
  CHECK_EQ(std::string(e->what()), "ENOENT: " + std::string(strerror(ENOENT)) + ", open '" + missing + "'");

  e = CHECK_SYSERROR(sm::statPath(missing, true), ENOENT, "statx");
  if (e) CHECK_EQ(e->path, missing);

  // A path that is not UTF-8: .path keeps the raw bytes, the message shows them escaped.
  std::string raw = dir / "bad\xff\xfe name";
  e = CHECK_SYSERROR(sm::File(raw, o), ENOENT, "open");
  REQUIRE(e.has_value());
  CHECK_EQ(e->path, raw);
  std::string msg = e->what();
  CHECK(msg.find(dir.path() + "/bad\\xFF\\xFE name'") != std::string::npos);
  CHECK(msg.find('\xff') == std::string::npos);
}

TEST(sys_error_fields_and_codes) {
  sm::SysError a(EIO, "write", "");
  CHECK_EQ(std::string(a.what()), "EIO: " + std::string(strerror(EIO)) + ", write");  // no path part
  CHECK_EQ(a.code(), std::string("EIO"));
  sm::SysError b(4095, "ioctl", "/x");
  CHECK_EQ(b.code(), std::string("E4095"));  // no name known to glibc
  CHECK_EQ(b.err, 4095);
  sm::SysError c(ECANCELED, "copy_range", "/a");
  CHECK_EQ(c.code(), std::string("ECANCELED"));

  errno = EACCES;
  auto e = CHECK_SYSERROR(sm::throwErrno("openat", "/p"), EACCES, "openat");
  if (e) CHECK_EQ(e->path, std::string("/p"));
  errno = EXDEV;
  e = CHECK_SYSERROR(sm::throwErrno("rename"), EXDEV, "rename");
  if (e) CHECK_EQ(e->path, std::string(""));
}

TEST(display_path_escapes_invalid_utf8) {
  using sm::displayPath;
  // The brief's example: the invalid byte becomes \xFF; the newline is valid UTF-8 (ASCII) and
  // is kept as is -- displayPath escapes only what is not UTF-8, not control characters.
  CHECK_EQ(displayPath("a\xff\n"), std::string("a\\xFF\n"));
  CHECK_EQ(displayPath(""), std::string(""));
  CHECK_EQ(displayPath("/plain/path with spaces"), std::string("/plain/path with spaces"));
  CHECK_EQ(displayPath("\t\x01\x7f"), std::string("\t\x01\x7f"));
  CHECK_EQ(displayPath("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80"),
           std::string("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80"));           // é 日本 😀
  CHECK_EQ(displayPath("\x80"), std::string("\\x80"));                                      // lone continuation byte
  CHECK_EQ(displayPath("\xc0\x80"), std::string("\\xC0\\x80"));                             // overlong NUL
  CHECK_EQ(displayPath("\xc1\xbf"), std::string("\\xC1\\xBF"));                             // overlong
  CHECK_EQ(displayPath("\xe2\x82"), std::string("\\xE2\\x82"));                             // truncated at the end
  CHECK_EQ(displayPath("\xe2\x82x"), std::string("\\xE2\\x82x"));                           // truncated in the middle
  CHECK_EQ(displayPath("\xf8\x88\x80\x80\x80"), std::string("\\xF8\\x88\\x80\\x80\\x80"));  // 5-byte form
  CHECK_EQ(displayPath("\xff\xfe"), std::string("\\xFF\\xFE"));
  CHECK_EQ(displayPath(std::string("a\0b", 3)), std::string("a\0b", 3));

  // Found while writing these tests: the 3- and 4-byte checks only look at the lead byte's
  // shape, so these invalid sequences pass through unescaped (N-API then turns them into U+FFFD).
  CHECK(displayPath("\xe0\x80\x80") ==
        "\\xE0\\x80\\x80");  // regression: sys_error.cc utf8SequenceLength: overlong 3-byte sequence ke
  CHECK(displayPath("\xed\xa0\x80") ==
        "\\xED\\xA0\\x80");  // regression: sys_error.cc utf8SequenceLength: UTF-16 surrogate (U+D800) k
  CHECK(displayPath("\xf0\x80\x80\x80") ==
        "\\xF0\\x80\\x80\\x80");  // regression: sys_error.cc utf8SequenceLength: overlong 4-byte sequence ke
  CHECK(displayPath("\xf4\x90\x80\x80") ==
        "\\xF4\\x90\\x80\\x80");  // regression: sys_error.cc utf8SequenceLength: code point above U+10FFFF k
  CHECK(displayPath("\xf5\x80\x80\x80") ==
        "\\xF5\\x80\\x80\\x80");  // regression: sys_error.cc utf8SequenceLength: lead byte F5 (never valid)
}

TEST(aligned_allocations) {
  for (size_t alignment : {size_t{8}, size_t{512}, size_t{4096}, size_t{65536}}) {
    void* p = sm::allocAligned(100000, alignment);
    CHECK_EQ(reinterpret_cast<uintptr_t>(p) % alignment, uintptr_t{0});
    memset(p, 1, 100000);
    sm::freeAligned(p);
  }
  void* big = sm::allocAligned(sm::kHugePage, 4096);  // 2 MiB and more: 2 MiB aligned
  CHECK_EQ(reinterpret_cast<uintptr_t>(big) % sm::kHugePage, uintptr_t{0});
  memset(big, 2, sm::kHugePage);
  sm::freeAligned(big);
  void* empty = sm::allocAligned(0, 4096);
  CHECK(empty != nullptr);
  sm::freeAligned(empty);
  CHECK_SYSERROR(sm::allocAligned(10, 3000), EINVAL, "posix_memalign");
  CHECK_SYSERROR(sm::allocAligned(10, 4), EINVAL, "posix_memalign");
  // ASan aborts on impossible sizes instead of failing them (allocator_may_return_null=0).
  if (!t::asanBuild()) CHECK_SYSERROR(sm::allocAligned(SIZE_MAX / 2, 4096), ENOMEM, "posix_memalign");
  sm::AlignedBuffer buf(12345, 4096);
  CHECK_EQ(buf.size(), size_t{12345});
  CHECK_EQ(reinterpret_cast<uintptr_t>(buf.data()) % 4096, uintptr_t{0});
}
