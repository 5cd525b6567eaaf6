// sm::File on real files: O_DIRECT with a buffered tail, EINTR and short transfers (through
// the interposed pread/pwrite), errors, and the fallbacks.
#include "file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "aligned_buffer.h"
#include "harness.h"
#include "interpose.h"

namespace {

constexpr size_t kMiB = 1 << 20;
constexpr size_t kSize = kMiB + 123;  // an aligned head and an unaligned tail

sm::OpenOptions opts(int flags, bool direct, mode_t mode = 0644) {
  sm::OpenOptions o;
  o.flags = flags;
  o.direct = direct;
  o.mode = mode;
  return o;
}

struct Counts {
  uint64_t direct, buffered;
};
Counts counts(const sm::File& f) { return {f.directBytes(), f.bufferedBytes()}; }

}  // namespace

TEST(file_direct_round_trip_unaligned_tail) {
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    std::string path = dir / "data";
    sm::AlignedBuffer src(kSize, 4096);
    t::fillPattern(src.data(), kSize, 1);

    bool direct;
    {
      sm::File w(path, opts(O_WRONLY | O_CREAT | O_TRUNC, true));
      direct = w.direct();
      t::note(std::string(base) + ": O_DIRECT " + (direct ? "accepted" : "refused, buffered fallback"));
      w.write(src.data(), kSize, 0);
      if (direct) {
        CHECK_EQ(w.directBytes(), uint64_t{kMiB});
        CHECK_EQ(w.bufferedBytes(), uint64_t{123});
      } else {
        CHECK_EQ(w.directBytes(), uint64_t{0});
        CHECK_EQ(w.bufferedBytes(), uint64_t{kSize});
      }
      CHECK_EQ(w.stat().size, uint64_t{kSize});
      w.close();
    }
    if (std::string(base) == "/var/tmp") CHECK(direct);  // ext4 and xfs take O_DIRECT
    CHECK_BYTES_EQ(t::readFile(path), std::string(src.data(), kSize));

    sm::File r(path, opts(O_RDONLY, true));
    CHECK_EQ(r.direct(), direct);
    sm::AlignedBuffer dst(2 * kMiB, 4096);
    memset(dst.data(), 0xAA, dst.size());
    CHECK_EQ(r.read(dst.data(), kSize, 0), kSize);
    CHECK_BYTES_EQ(std::string(dst.data(), kSize), std::string(src.data(), kSize));
    Counts c = counts(r);
    if (direct) {
      CHECK_EQ(c.direct, uint64_t{kMiB});
      CHECK_EQ(c.buffered, uint64_t{123});
    } else {
      CHECK_EQ(c.direct, uint64_t{0});
      CHECK_EQ(c.buffered, uint64_t{kSize});
    }

    // Asking for more than the file holds: returns what there is, stops at end of file.
    memset(dst.data(), 0xAA, dst.size());
    CHECK_EQ(r.read(dst.data(), 2 * kMiB, 0), kSize);
    CHECK_BYTES_EQ(std::string(dst.data(), kSize), std::string(src.data(), kSize));
    Counts c2 = counts(r);
    CHECK_EQ((c2.direct - c.direct) + (c2.buffered - c.buffered), uint64_t{kSize});
    // At and past end of file.
    CHECK_EQ(r.read(dst.data(), 4096, kSize), size_t{0});
    CHECK_EQ(r.read(dst.data(), 4096, 8 * kMiB), size_t{0});

    // Unaligned offset, length and address: all buffered, still right.
    Counts before = counts(r);
    CHECK_EQ(r.read(dst.data() + 1, 5000, 4097), size_t{5000});
    CHECK_BYTES_EQ(std::string(dst.data() + 1, 5000), std::string(src.data() + 4097, 5000));
    CHECK_EQ(counts(r).direct, before.direct);
    CHECK_EQ(counts(r).buffered, before.buffered + 5000);

    // An unaligned buffer address with aligned offset and length cannot go direct either.
    before = counts(r);
    CHECK_EQ(r.read(dst.data() + 8, 8192, 0), size_t{8192});
    CHECK_BYTES_EQ(std::string(dst.data() + 8, 8192), std::string(src.data(), 8192));
    CHECK_EQ(counts(r).direct, before.direct);
  }
}

TEST(file_unaligned_write_in_the_middle_keeps_neighbours) {
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    std::string path = dir / "data";
    std::string orig = t::pattern(3 * 65536, 2);
    t::writeFile(path, orig);
    std::string patch = t::pattern(10000, 3);
    {
      sm::File f(path, opts(O_WRONLY, true));
      f.write(patch.data(), patch.size(), 12345);  // std::string storage: any alignment
    }
    std::string want = orig;
    want.replace(12345, patch.size(), patch);
    CHECK_BYTES_EQ(t::readFile(path), want);
  }
}

// The core's pread/pwrite loops against EINTR and short transfers, with the executable's own
// pread/pwrite (interpose.cc) injecting them.
static void faultRoundTrip(const char* base, interpose::Mode mode, const char* modeName) {
  using interpose::counters;
  t::TempDir dir(base);
  std::string path = dir / "data";
  sm::AlignedBuffer src(kSize, 4096);
  t::fillPattern(src.data(), kSize, 4);
  std::string where = std::string(base) + " " + modeName;

  {
    sm::File w(path, opts(O_WRONLY | O_CREAT | O_TRUNC, true));
    interpose::start(mode);
    w.write(src.data(), kSize, 0);
    interpose::stop();
    CHECK_EQ(w.directBytes() + w.bufferedBytes(), uint64_t{kSize});
    t::note(where + ": write took " + std::to_string(counters.pwriteCalls.load()) + " pwrite calls (" +
            std::to_string(counters.eintr.load()) + " EINTR, " + std::to_string(counters.shortCount.load()) +
            " short), " + std::to_string(w.directBytes()) + " bytes direct");
    CHECK_EQ(counters.preadCalls.load(), uint64_t{0});
    CHECK_GE(counters.pwriteCalls.load(), uint64_t{10});  // proves the core's calls reach the interposer
    CHECK_GE(counters.eintr.load(), uint64_t{1});
    CHECK_GE(counters.shortCount.load(), uint64_t{5});
    if (w.direct()) {
      CHECK_GT(counters.directCalls.load(), uint64_t{0});
      if (mode == interpose::Mode::ShortReport)
        CHECK_LT(w.directBytes(), uint64_t{kMiB});
      else
        CHECK_EQ(w.directBytes(), uint64_t{kMiB});
    }
  }
  CHECK_BYTES_EQ(t::readFile(path), std::string(src.data(), kSize));

  sm::File r(path, opts(O_RDONLY, true));
  sm::AlignedBuffer dst(2 * kMiB, 4096);
  memset(dst.data(), 0, dst.size());
  interpose::start(mode);
  size_t n = r.read(dst.data(), kSize, 0);
  interpose::stop();
  CHECK_EQ(n, kSize);
  CHECK_BYTES_EQ(std::string(dst.data(), n), std::string(src.data(), kSize));
  CHECK_EQ(r.directBytes() + r.bufferedBytes(), uint64_t{kSize});
  t::note(where + ": read took " + std::to_string(counters.preadCalls.load()) + " pread calls (" +
          std::to_string(counters.eintr.load()) + " EINTR, " + std::to_string(counters.shortCount.load()) + " short)");
  CHECK_EQ(counters.pwriteCalls.load(), uint64_t{0});
  CHECK_GE(counters.preadCalls.load(), uint64_t{10});
  CHECK_GE(counters.eintr.load(), uint64_t{1});
  CHECK_GE(counters.shortCount.load(), uint64_t{5});

  // More than the file holds: a short count at end of file must end the loop, not a short
  // count before it.
  memset(dst.data(), 0, dst.size());
  interpose::start(mode);
  n = r.read(dst.data(), 2 * kMiB, 0);
  interpose::stop();
  CHECK_EQ(n, kSize);
  CHECK_BYTES_EQ(std::string(dst.data(), n), std::string(src.data(), kSize));
  CHECK_GE(counters.preadCalls.load(), uint64_t{3});
  CHECK_GE(counters.shortCount.load(), uint64_t{1});
}

TEST(file_survives_eintr_and_short_transfers) {
  for (const char* base : t::kBases) {
    faultRoundTrip(base, interpose::Mode::Short, "short");
    faultRoundTrip(base, interpose::Mode::ShortReport, "short-report");
  }
}

TEST(interposer_forwards_to_the_sanitizer_runtime) {
  t::note("pread forwards to " + interpose::realPreadOwner());
  t::note("pwrite forwards to " + interpose::realPwriteOwner());
  if (!t::asanBuild()) {
    t::skip("not an ASan build");
    return;
  }
  // A death test: through the interposed pread, read 64 bytes into a 16-byte heap block. If the
  // forwarding reaches ASan's interceptor, the child dies with a heap-buffer-overflow report;
  // if it bypassed ASan (straight to libc), the child exits 0.
  t::TempDir dir("/var/tmp");
  std::string path = dir / "data";
  t::writeFile(path, t::pattern(4096, 5));
  for (bool isRead : {true, false}) {
    std::string err;
    int status = t::runInChild(
        [&] {
          int fd = ::open(path.c_str(), O_RDWR);
          if (fd < 0) return 3;
          char* small = static_cast<char*>(malloc(16));
          memset(small, 1, 16);
          volatile size_t len = 64;  // opaque to the compiler, which would warn about it
          ssize_t n = isRead ? ::pread(fd, small, len, 0) : ::pwrite(fd, small, len, 0);
          free(small);
          return n == 64 ? 0 : 4;
        },
        &err);
    const char* which = isRead ? "pread" : "pwrite";
    bool reported = err.find("heap-buffer-overflow") != std::string::npos;
    CHECK(reported);
    CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
    if (!reported)
      t::note(std::string(which) + ": child stderr: " + err.substr(0, 2000));
    else
      t::note(std::string(which) + ": ASan caught the overflow through the interposer");
  }
}

TEST(file_concurrent_unaligned_reads) {
  t::TempDir dir("/var/tmp");
  std::string path = dir / "data";
  std::string data = t::pattern(5 * kMiB + 77, 6);
  t::writeFile(path, data);
  sm::File f(path, opts(O_RDONLY, true));
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int i = 0; i < 8; i++) {
    threads.emplace_back([&, i] {
      sm::AlignedBuffer buf(kMiB + 8192, 4096);
      for (int round = 0; round < 20; round++) {
        uint64_t off = (static_cast<uint64_t>(i) * 513 * 1024 + round * 4096 + (round % 3) * 17) % (3 * kMiB);
        size_t len = kMiB + (round % 2) * 1000;
        size_t n = f.read(buf.data(), len, off);
        if (n != len || memcmp(buf.data(), data.data() + off, len) != 0) bad++;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK_EQ(bad.load(), 0);
  CHECK_EQ(f.directBytes() + f.bufferedBytes(), uint64_t{8 * 20} * kMiB + uint64_t{8 * 10 * 1000});
}

TEST(file_open_errors_and_bad_alignment) {
  t::TempDir dir("/var/tmp");
  for (bool direct : {false, true}) {
    std::string missing = dir / "missing";
    auto e = CHECK_SYSERROR(sm::File(missing, opts(O_RDONLY, direct)), ENOENT, "open");
    if (e) CHECK_EQ(e->path, missing);
  }
  sm::OpenOptions o = opts(O_RDONLY, true);
  o.alignment = 3000;
  t::writeFile(dir / "f", "x");
  CHECK_SYSERROR(sm::File(dir / "f", o), EINVAL, "open");
  o.alignment = 0;
  CHECK_SYSERROR(sm::File(dir / "f", o), EINVAL, "open");
  // A directory opened for writing.
  CHECK_SYSERROR(sm::File(dir.path(), opts(O_WRONLY, false)), EISDIR, "open");
  // O_EXCL on an existing file, with and without O_DIRECT.
  CHECK_SYSERROR(sm::File(dir / "f", opts(O_WRONLY | O_CREAT | O_EXCL, true)), EEXIST, "open");
}

TEST(file_close_then_use) {
  t::TempDir dir("/var/tmp");
  std::string path = dir / "f";
  t::writeFile(path, t::pattern(8192, 7));
  sm::File f(path, opts(O_RDWR, true));
  char buf[16];
  CHECK_EQ(f.read(buf, sizeof buf, 3), sizeof buf);  // opens the buffered descriptor too
  f.close();
  f.close();  // idempotent
  CHECK_EQ(f.fd(), -1);
  sm::AlignedBuffer a(4096, 4096);
  CHECK_SYSERROR(f.read(a.data(), 4096, 0), EBADF, "read");  // aligned: the direct descriptor
  CHECK_SYSERROR(f.write(a.data(), 4096, 0), EBADF, "write");
  // Found while writing these tests: unaligned, a closed direct File tries to reopen
  // "/proc/self/fd/-1" and reports ENOENT from "open" instead of EBADF.
  auto r = t::catchSys([&] { f.read(buf, sizeof buf, 0); });
  auto w = t::catchSys([&] { f.write(buf, sizeof buf, 0); });
  REQUIRE(r && w);
  if (r->err != EBADF) t::note(std::string("unaligned read after close: ") + r->what());
  CHECK(r->err == EBADF &&
        r->syscall == "read");  // regression: file.cc File::bufferedFd: unaligned read after close() says
  CHECK(w->err == EBADF &&
        w->syscall == "write");  // regression: file.cc File::bufferedFd: unaligned write after close() says
  CHECK_SYSERROR(f.stat(), EBADF, "statx");
  CHECK_SYSERROR(f.fsync(), EBADF, "fsync");
}

TEST(file_sizes_holes_and_stat) {
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    std::string path = dir / "f";
    sm::File f(path, opts(O_RDWR | O_CREAT | O_EXCL, true, 0600));
    f.truncate(8 * kMiB);
    sm::FileStat st = f.stat();
    CHECK_EQ(st.size, uint64_t{8 * kMiB});
    CHECK(S_ISREG(st.mode));
    CHECK_EQ(st.mode & 07777u, 0600u);
    CHECK_EQ(st.nlink, 1u);
    CHECK_EQ(st.blocks, uint64_t{0});
    CHECK(f.dataExtents(0, 8 * kMiB).empty());

    f.allocate(kMiB, 2 * kMiB);
    f.fdatasync();
    CHECK_GE(f.stat().blocks * 512, uint64_t{2 * kMiB});
    sm::AlignedBuffer buf(kMiB, 4096);
    t::fillPattern(buf.data(), kMiB, 8);
    f.write(buf.data(), kMiB, 4 * kMiB);
    f.fsync();
    f.punchHole(kMiB, 2 * kMiB);
    auto ext = f.dataExtents(0, 8 * kMiB);
    REQUIRE_EQ(ext.size(), size_t{1});
    CHECK_EQ(ext[0].offset, uint64_t{4 * kMiB});
    CHECK_EQ(ext[0].length, uint64_t{kMiB});
    // Clipped to the range asked for.
    ext = f.dataExtents(4 * kMiB + 100, 4 * kMiB + 300);
    REQUIRE_EQ(ext.size(), size_t{1});
    CHECK_EQ(ext[0].offset, uint64_t{4 * kMiB + 100});
    CHECK_EQ(ext[0].length, uint64_t{200});
    CHECK_EQ(f.stat().size, uint64_t{8 * kMiB});  // punchHole keeps the size
    CHECK_LE(f.stat().blocks * 512, uint64_t{kMiB + 65536});

    sm::FileStat a = f.stat(), b = sm::statPath(path, false);
    CHECK_EQ(a.ino, b.ino);
    CHECK_EQ(a.dev, b.dev);
    CHECK_EQ(a.size, b.size);
    if (std::string(base) == "/var/tmp") CHECK_GT(a.btimeSec, int64_t{0});  // ext4 reports btime
  }
}

// Found while writing these tests: with O_CREAT | O_EXCL, File's constructor creates the file
// with O_DIRECT, and when the file system refuses O_DIRECT (EINVAL, which the kernel checks
// only after creating the file) the buffered retry fails with EEXIST on the file it just
// made. Needs a file system without O_DIRECT (ramfs; tmpfs accepts it since Linux 6.6):
// set SM_TEST_NODIRECT_DIR to a directory on one, e.g.
//   mkdir /tmp/ramfs && mount -t ramfs none /tmp/ramfs && SM_TEST_NODIRECT_DIR=/tmp/ramfs ...
TEST(file_direct_fallback_with_o_excl) {
  const char* base = getenv("SM_TEST_NODIRECT_DIR");
  if (!base || !*base) {
    t::skip("SM_TEST_NODIRECT_DIR not set (a directory on a file system without O_DIRECT)");
    return;
  }
  t::TempDir dir(base);
  {
    // Without O_EXCL the fallback works.
    sm::File f(dir / "plain", opts(O_WRONLY | O_CREAT | O_TRUNC, true));
    CHECK(!f.direct());
    f.write("hello", 5, 0);
    CHECK_EQ(f.bufferedBytes(), uint64_t{5});
  }
  auto e = t::catchSys([&] { sm::File f(dir / "excl", opts(O_WRONLY | O_CREAT | O_EXCL, true)); });
  if (e) t::note(std::string("File(O_CREAT|O_EXCL, direct) threw: ") + e->what());
  CHECK(!e);  // regression: file.cc File::File: O_CREAT|O_EXCL + direct on a file system
}

// Found while writing these tests: the unaligned part of a direct transfer goes through a
// second descriptor that File opens lazily via /proc/self/fd/N -- a new open() that is
// permission-checked again. A non-root user who creates a file read-only (mode 0444, as a
// copier preserving modes does) can write its aligned head but not its tail: EACCES.
TEST(file_direct_tail_on_read_only_mode_file) {
  t::TempDir dir("/var/tmp");
  chmod(dir.path().c_str(), 0777);
  std::string path = dir / "ro";
  std::string err;
  int status = t::runInChild(
      [&] {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 10;
        sm::AlignedBuffer buf(4096 + 10, 4096);
        t::fillPattern(buf.data(), buf.size(), 9);
        try {
          sm::File f(path, opts(O_WRONLY | O_CREAT | O_EXCL, true, 0444));
          if (!f.direct()) return 11;
          f.write(buf.data(), buf.size(), 0);
        } catch (const sm::SysError& e) {
          fprintf(stderr, "%s (syscall %s)\n", e.what(), e.syscall.c_str());
          return 1;
        }
        return 0;
      },
      &err);
  REQUIRE(WIFEXITED(status));
  int rc = WEXITSTATUS(status);
  if (rc == 10 || rc == 11) {
    t::skip(rc == 10 ? "cannot drop privileges" : "O_DIRECT refused");
    return;
  }
  if (!err.empty()) t::note("as uid 65534: " + err.substr(0, err.find('\n')));
  CHECK(rc == 0);  // regression: file.cc File::bufferedFd: the /proc/self/fd reopen fails (EA
}

TEST(file_clone_from_says_why_it_did_not) {
  // The test bases (ext4, tmpfs) have no reflinks; cloning itself is tested on XFS
  // (test/reflink.test.ts).
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    t::writeFile(dir / "base", "data");
    mkdir((dir / "sub").c_str(), 0755);
    sm::File f(dir / "copy", sm::opening(O_RDWR | O_CREAT, 0600));
    CHECK(f.cloneFrom(dir / "base") == sm::File::Clone::Unsupported);
    CHECK(f.cloneFrom(dir / "missing") == sm::File::Clone::NoBase);
    CHECK(f.cloneFrom(dir / "sub") == sm::File::Clone::NoBase);
    CHECK_EQ(f.stat().size, 0u);
  }
}
