// sm::fs_ops on real files: xattrs, times, links, special files. None of them follows a final
// symlink unless asked.
#include "fs_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "file.h"
#include "harness.h"

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Restores the umask when the test ends.
struct Umask {
  explicit Umask(mode_t m) : old(umask(m)) {}
  ~Umask() { umask(old); }
  mode_t old;
};

}  // namespace

TEST(fs_xattrs_set_get_list_remove) {
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    std::string path = dir / "f";
    t::writeFile(path, "x");
    auto probe = t::catchSys([&] { sm::setXattr(path, "user.sm.probe", "1", 0); });
    if (probe && (probe->err == ENOTSUP || probe->err == EOPNOTSUPP)) {
      t::note(std::string(base) + ": no user.* xattrs here, skipped");
      continue;
    }
    REQUIRE(!probe);
    CHECK_EQ(sm::getXattr(path, "user.sm.probe"), std::string("1"));

    std::string binary("v\0al\xff\x01ue", 8);  // values are bytes, NUL included
    sm::setXattr(path, "user.sm.binary", binary, 0);
    CHECK_EQ(sm::getXattr(path, "user.sm.binary"), binary);
    sm::setXattr(path, "user.sm.empty", "", 0);
    CHECK_EQ(sm::getXattr(path, "user.sm.empty"), std::string(""));
    std::string large = t::pattern(3000, 20);  // beyond the first 256-byte guess
    sm::setXattr(path, "user.sm.large", large, 0);
    CHECK_EQ(sm::getXattr(path, "user.sm.large"), large);
    std::string exact = t::pattern(256, 21);  // exactly the first guess: must still be read whole
    sm::setXattr(path, "user.sm.exact", exact, 0);
    CHECK_EQ(sm::getXattr(path, "user.sm.exact"), exact);
    // ext4 keeps all of a file's xattrs in one 4 KiB block: make room for the names below.
    sm::removeXattr(path, "user.sm.large");
    sm::removeXattr(path, "user.sm.exact");

    // Enough names to overflow the first 1 KiB list buffer.
    std::vector<std::string> names;
    for (int i = 0; i < 40; i++) {
      names.push_back("user.sm.n" + std::to_string(i) + "-" + std::string(20, 'n'));  // ~1.3 KiB of names
      sm::setXattr(path, names.back(), "", 0);
    }
    auto listed = sm::listXattrs(path);
    for (const auto& n : names) CHECK(contains(listed, n));
    for (const char* n : {"user.sm.probe", "user.sm.binary", "user.sm.empty"}) CHECK(contains(listed, n));
    for (const auto& n : listed) CHECK(!n.empty());

    CHECK_SYSERROR(sm::setXattr(path, "user.sm.probe", "2", XATTR_CREATE), EEXIST, "lsetxattr");
    CHECK_SYSERROR(sm::setXattr(path, "user.sm.absent", "2", XATTR_REPLACE), ENODATA, "lsetxattr");
    sm::setXattr(path, "user.sm.probe", "replaced", XATTR_REPLACE);
    CHECK_EQ(sm::getXattr(path, "user.sm.probe"), std::string("replaced"));
    sm::removeXattr(path, "user.sm.probe");
    auto e = CHECK_SYSERROR(sm::getXattr(path, "user.sm.probe"), ENODATA, "lgetxattr");
    if (e) CHECK_EQ(e->path, path);
    CHECK_SYSERROR(sm::removeXattr(path, "user.sm.probe"), ENODATA, "lremovexattr");
    CHECK(!contains(sm::listXattrs(path), "user.sm.probe"));
    CHECK_SYSERROR(sm::listXattrs(dir / "missing"), ENOENT, "llistxattr");

    // Not followed: a symlink's own xattrs are asked for, and user.* is not allowed on links.
    std::string link = dir / "link";
    sm::symlink("f", link);
    CHECK_SYSERROR(sm::setXattr(link, "user.sm.onlink", "1", 0), EPERM, "lsetxattr");
    CHECK_SYSERROR(sm::getXattr(link, "user.sm.binary"), ENODATA, "lgetxattr");
    CHECK(!contains(sm::listXattrs(link), "user.sm.binary"));
  }
}

TEST(fs_set_times_with_nanoseconds) {
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    std::string path = dir / "f";
    t::writeFile(path, "x");
    sm::setTimes(path, {1700000000, 123456789}, {1600000000, 987654321}, false);
    sm::FileStat st = sm::statPath(path, false);
    CHECK_EQ(st.atimeSec, int64_t{1700000000});
    CHECK_EQ(st.atimeNsec, 123456789u);
    CHECK_EQ(st.mtimeSec, int64_t{1600000000});
    CHECK_EQ(st.mtimeNsec, 987654321u);

    // UTIME_OMIT leaves one of them alone; times before 1970 work.
    sm::setTimes(path, {0, UTIME_OMIT}, {-86400, 1}, false);
    st = sm::statPath(path, false);
    CHECK_EQ(st.atimeSec, int64_t{1700000000});
    CHECK_EQ(st.atimeNsec, 123456789u);
    CHECK_EQ(st.mtimeSec, int64_t{-86400});
    CHECK_EQ(st.mtimeNsec, 1u);

    // follow=false sets the link's own times, follow=true the target's.
    std::string link = dir / "link";
    sm::symlink("f", link);
    sm::setTimes(link, {1000, 5}, {2000, 6}, false);
    CHECK_EQ(sm::statPath(link, false).mtimeSec, int64_t{2000});
    CHECK_EQ(sm::statPath(link, false).mtimeNsec, 6u);
    CHECK_EQ(sm::statPath(path, false).mtimeSec, int64_t{-86400});
    sm::setTimes(link, {3000, 7}, {4000, 8}, true);
    CHECK_EQ(sm::statPath(path, false).mtimeSec, int64_t{4000});
    CHECK_EQ(sm::statPath(path, false).mtimeNsec, 8u);
    CHECK_EQ(sm::statPath(link, false).mtimeSec, int64_t{2000});
    CHECK_EQ(sm::statPath(link, true).mtimeSec, int64_t{4000});

    CHECK_SYSERROR(sm::setTimes(path, {0, 1000000000}, {0, 0}, false), EINVAL, "utimensat");
    CHECK_SYSERROR(sm::setTimes(dir / "missing", {0, 0}, {0, 0}, false), ENOENT, "utimensat");
  }
}

TEST(fs_symlinks_with_non_utf8_bytes) {
  t::TempDir dir("/var/tmp");
  std::string target = "t\xff\xfe/not\x80utf8/\xc0\xaf..";
  std::string link = dir / "l\xff\x01nk";
  sm::symlink(target, link);
  CHECK_EQ(sm::readlink(link), target);
  sm::FileStat st = sm::statPath(link, false);
  CHECK(S_ISLNK(st.mode));
  CHECK_EQ(st.size, uint64_t{target.size()});
  CHECK_SYSERROR(sm::statPath(link, true), ENOENT, "statx");  // dangling: followed, not there

  // Targets around and beyond the first 256-byte guess.
  for (size_t len : {size_t{255}, size_t{256}, size_t{257}, size_t{1000}, size_t{4000}}) {
    std::string longTarget(len, 'a');
    for (size_t i = 0; i < len; i += 7) longTarget[i] = '\xe9';
    std::string l = dir / ("long" + std::to_string(len));
    sm::symlink(longTarget, l);
    CHECK_EQ(sm::readlink(l), longTarget);
  }

  auto e = CHECK_SYSERROR(sm::symlink("x", link), EEXIST, "symlink");
  if (e) CHECK_EQ(e->path, link);
  std::string file = dir / "regular";
  t::writeFile(file, "x");
  CHECK_SYSERROR(sm::readlink(file), EINVAL, "readlink");
  CHECK_SYSERROR(sm::readlink(dir / "missing"), ENOENT, "readlink");

  // A link to a real file: statPath follows only when asked.
  std::string good = dir / "good";
  sm::symlink("regular", good);
  CHECK(S_ISLNK(sm::statPath(good, false).mode));
  CHECK(S_ISREG(sm::statPath(good, true).mode));
  CHECK_EQ(sm::statPath(good, true).ino, sm::statPath(file, false).ino);
}

TEST(fs_hard_links) {
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    std::string a = dir / "a", b = dir / "b\xff";
    t::writeFile(a, "data");
    sm::link(a, b);
    sm::FileStat sa = sm::statPath(a, false), sb = sm::statPath(b, false);
    CHECK_EQ(sa.nlink, 2u);
    CHECK_EQ(sb.nlink, 2u);
    CHECK_EQ(sa.ino, sb.ino);
    CHECK_EQ(t::readFile(b), std::string("data"));
    auto e = CHECK_SYSERROR(sm::link(a, b), EEXIST, "link");
    if (e) CHECK_EQ(e->path, b);
    CHECK_SYSERROR(sm::link(dir / "missing", dir / "c"), ENOENT, "link");
  }
}

TEST(fs_make_dir_keeps_a_directory_and_replaces_anything_else) {
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    Umask um(0);
    std::string fresh = dir / "new\xfe", kept = dir / "kept", file = dir / "file", link = dir / "link",
                elsewhere = dir / "elsewhere";
    sm::makeDir(fresh, 0700);
    CHECK_EQ(sm::statPath(fresh, false).mode, static_cast<uint32_t>(S_IFDIR | 0700));
    sm::makeDir(kept, 0755);
    t::writeFile(kept + "/inside", "x");
    sm::makeDir(kept, 0700);  // already a directory: kept, contents and mode too
    CHECK_EQ(t::readFile(kept + "/inside"), std::string("x"));
    CHECK_EQ(sm::statPath(kept, false).mode, static_cast<uint32_t>(S_IFDIR | 0755));
    t::writeFile(file, "in the way");
    sm::makeDir(file, 0700);
    CHECK(S_ISDIR(sm::statPath(file, false).mode));
    sm::makeDir(elsewhere, 0700);
    sm::symlink(elsewhere, link);  // planted: the directory must not be made through it
    sm::makeDir(link, 0700);
    CHECK(S_ISDIR(sm::statPath(link, false).mode));
    CHECK(S_ISDIR(sm::statPath(elsewhere, false).mode));
    auto e = CHECK_SYSERROR(sm::makeDir(dir / "missing/child", 0700), ENOENT, "mkdir");
    if (e) CHECK_EQ(e->path, dir / "missing/child");
  }
}

TEST(fs_special_files_and_modes) {
  Umask um(022);
  t::TempDir dir("/var/tmp");
  std::string fifo = dir / "fifo";
  sm::mkfifo(fifo, 0666);
  sm::FileStat st = sm::statPath(fifo, false);
  CHECK(S_ISFIFO(st.mode));
  CHECK_EQ(st.mode & 07777u, 0644u);  // umask applies
  CHECK_SYSERROR(sm::mkfifo(fifo, 0600), EEXIST, "mkfifo");

  std::string node = dir / "node";
  sm::mknod(node, S_IFIFO | 0600, 0);
  CHECK(S_ISFIFO(sm::statPath(node, false).mode));
  std::string reg = dir / "reg";
  sm::mknod(reg, S_IFREG | 0640, 0);
  CHECK(S_ISREG(sm::statPath(reg, false).mode));
  CHECK_EQ(sm::statPath(reg, false).mode & 07777u, 0640u);

  sm::chmod(reg, 04711);
  CHECK_EQ(sm::statPath(reg, false).mode & 07777u, 04711u);
  CHECK_SYSERROR(sm::chmod(dir / "missing", 0600), ENOENT, "chmod");

  // lchown to the current owner always works; on a symlink it changes the link, not the target.
  sm::lchown(reg, getuid(), getgid());
  std::string link = dir / "link";
  sm::symlink("reg", link);
  sm::lchown(link, getuid(), getgid());
  if (geteuid() == 0) {
    sm::lchown(link, 65534, 65534);
    CHECK_EQ(sm::statPath(link, false).uid, 65534u);
    CHECK_EQ(sm::statPath(reg, false).uid, static_cast<uint32_t>(getuid()));
  }
  CHECK_SYSERROR(sm::lchown(dir / "missing", 0, 0), ENOENT, "lchown");
}
