// sm::dir_scan on real directories: byte order, exact names, stats relative to the directory
// fd, an entry that vanishes between readdir and statx, and paths far past PATH_MAX.
#include "dir_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "harness.h"

namespace {

std::vector<std::string> names(const sm::DirListing& l) {
  std::vector<std::string> out;
  for (size_t i = 0; i < l.size(); i++) out.emplace_back(l.name(i));
  return out;
}

// memcmp order, a prefix first: what every listing must be in.
bool byteLess(const std::string& a, const std::string& b) {
  int c = std::memcmp(a.data(), b.data(), std::min(a.size(), b.size()));
  return c < 0 || (c == 0 && a.size() < b.size());
}

struct stat lstatAt(int dirFd, const std::string& name) {
  struct stat st;
  if (fstatat(dirFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) throw std::runtime_error("fstatat " + name);
  return st;
}

}  // namespace

TEST(dir_scan_names_sorted_by_bytes_with_exact_stats) {
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    const std::vector<std::string> files = {
        "B", "a", "a-b", "a.b", "a0", "ab", "Z", "\xc3\xa9", "f\xff\xfe\nn", std::string(255, '\xe9'), "\xff",
    };
    for (const auto& f : files) t::writeFile(dir / f, f);
    REQUIRE(mkdir((dir / "sub").c_str(), 0755) == 0);
    REQUIRE(symlink("sub", (dir / "link").c_str()) == 0);
    REQUIRE(symlink("no/such", (dir / "dangling").c_str()) == 0);
    REQUIRE(mkfifo((dir / "fifo").c_str(), 0600) == 0);

    sm::DirListing l = sm::readDirectory(dir.path());
    std::vector<std::string> want = files;
    for (const char* n : {"sub", "link", "dangling", "fifo"}) want.push_back(n);
    std::sort(want.begin(), want.end(), byteLess);
    CHECK(names(l) == want);  // . and .. left out, every name exactly as its bytes
    REQUIRE_EQ(l.size(), want.size());
    CHECK_EQ(std::string(l.name(0)), std::string("B"));
    CHECK_EQ(std::string(l.name(l.size() - 1)), std::string("\xff"));  // unsigned: 0xFF last
    CHECK_EQ(l.offsets.size(), l.size() + 1);
    CHECK_EQ(size_t{l.offsets.back()}, l.names.size());

    sm::UniqueFd fd = sm::openDirAt(AT_FDCWD, dir.path());
    for (size_t i = 0; i < l.size(); i++) {
      std::string n(l.name(i));
      struct stat st = lstatAt(fd.get(), n);
      CHECK_EQ(l.errs[i], 0);
      CHECK_EQ(l.stats[i].ino, uint64_t{st.st_ino});
      CHECK_EQ(l.dirIno[i], uint64_t{st.st_ino});
      CHECK_EQ(l.stats[i].mode, uint32_t{st.st_mode});  // the link itself, never its target
      CHECK_EQ(l.stats[i].size, uint64_t(st.st_size));
      CHECK_EQ(l.stats[i].dev, uint64_t{st.st_dev});
      CHECK_EQ(l.stats[i].nlink, uint32_t(st.st_nlink));
      CHECK_EQ(l.stats[i].mtimeSec, int64_t{st.st_mtim.tv_sec});
      CHECK_EQ(l.stats[i].mtimeNsec, uint32_t(st.st_mtim.tv_nsec));
    }
    auto at = [&](const std::string& n) {
      for (size_t i = 0; i < l.size(); i++)
        if (l.name(i) == n) return i;
      throw std::runtime_error("no " + n);
    };
    CHECK(S_ISLNK(l.stats[at("link")].mode));
    CHECK(S_ISLNK(l.stats[at("dangling")].mode));
    CHECK(S_ISFIFO(l.stats[at("fifo")].mode));
    CHECK(S_ISDIR(l.stats[at("sub")].mode));
    CHECK_EQ(l.stats[at(std::string(255, '\xe9'))].size, uint64_t{255});
  }
}

TEST(dir_scan_large_directory_takes_many_reads) {
  t::TempDir dir("/dev/shm");
  // ~6,000 records of 40-odd bytes: several 64 KiB getdents64 buffers.
  std::vector<std::string> want;
  for (int i = 0; i < 6000; i++) {
    std::string n = "entry-with-a-longish-name-" + std::to_string((i * 7919) % 6000);
    int fd = open((dir / n).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    close(fd);
    want.push_back(n);
  }
  std::sort(want.begin(), want.end(), byteLess);
  sm::UniqueFd fd = sm::openDirAt(AT_FDCWD, dir.path());
  sm::DirListing l = sm::readDirectory(fd.get(), dir.path());
  CHECK(names(l) == want);
  CHECK(std::all_of(l.errs.begin(), l.errs.end(), [](int e) { return e == 0; }));
  // The same fd read again (listDirectory rewinds it) gives the same names.
  CHECK(names(sm::listDirectory(fd.get())) == want);
}

TEST(dir_scan_empty_directory) {
  t::TempDir dir("/dev/shm");
  sm::DirListing l = sm::readDirectory(dir.path());
  CHECK_EQ(l.size(), size_t{0});
  CHECK_EQ(l.offsets.size(), size_t{1});
  CHECK(l.names.empty());
}

TEST(dir_scan_vanished_entry_is_an_error_not_a_throw) {
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    for (const char* n : {"a", "b", "c"}) t::writeFile(dir / n, n);
    sm::UniqueFd fd = sm::openDirAt(AT_FDCWD, dir.path());
    sm::DirListing l = sm::listDirectory(fd.get(), dir.path());
    REQUIRE_EQ(l.size(), size_t{3});
    REQUIRE(unlink((dir / "b").c_str()) == 0);  // between readdir and statx
    auto thrown = t::catchSys([&] { sm::statEntries(fd.get(), l); });
    CHECK(!thrown);
    CHECK_EQ(l.errs[0], 0);
    CHECK_EQ(l.errs[1], ENOENT);
    CHECK_EQ(l.errs[2], 0);
    CHECK_EQ(l.stats[1].mode, uint32_t{0});  // zeros for the failed entry
    CHECK(S_ISREG(l.stats[0].mode) && S_ISREG(l.stats[2].mode));
    CHECK_EQ(l.stats[2].size, uint64_t{1});
  }
}

TEST(dir_scan_open_errors) {
  t::TempDir dir("/dev/shm");
  t::writeFile(dir / "file", "x");
  REQUIRE(mkdir((dir / "sub").c_str(), 0755) == 0);
  REQUIRE(symlink("sub", (dir / "link").c_str()) == 0);
  auto e = CHECK_SYSERROR(sm::openDirAt(AT_FDCWD, dir / "missing"), ENOENT, "opendir");
  if (e) CHECK_EQ(e->path, dir / "missing");
  CHECK_SYSERROR(sm::openDirAt(AT_FDCWD, dir / "file"), ENOTDIR, "opendir");
  CHECK_SYSERROR(sm::readDirectory(dir / "link"), ENOTDIR, "opendir");  // a final symlink is not followed
  CHECK_SYSERROR(sm::openDirAt(12345, "x"), EBADF, "opendir");
  CHECK_SYSERROR(sm::readDirectory(std::string(PATH_MAX, 'a')), ENAMETOOLONG, "opendir");
  // Relative to a directory fd, through several components.
  sm::UniqueFd fd = sm::openDirAt(AT_FDCWD, dir.path());
  t::writeFile(dir / "sub/inner", "");
  sm::DirListing l = sm::readDirectory("sub", fd.get());
  CHECK(names(l) == std::vector<std::string>{"inner"});
  sm::UniqueFd moved = std::move(fd);
  CHECK_EQ(fd.get(), -1);
  CHECK(moved.get() >= 0);
}

// Removes everything under the directory open on dirFd, through fds at every level (nftw, and
// TempDir with it, cannot go past PATH_MAX).
void removeBelow(int dirFd) {
  int fd = dup(dirFd);
  DIR* d = fd >= 0 ? fdopendir(fd) : nullptr;
  if (!d) return;
  rewinddir(d);
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (unlinkat(dirFd, n.c_str(), 0) == 0) continue;
    int child = openat(dirFd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child < 0) continue;
    removeBelow(child);
    close(child);
    unlinkat(dirFd, n.c_str(), AT_REMOVEDIR);
  }
  closedir(d);
}

TEST(dir_scan_paths_past_path_max_through_an_openDirAt_chain) {
  t::TempDir dir("/var/tmp");
  sm::UniqueFd top = sm::openDirAt(AT_FDCWD, dir.path());
  struct Cleanup {
    int fd;
    ~Cleanup() { removeBelow(fd); }
  } cleanup{top.get()};
  // 30 levels of 250-byte names (every third not UTF-8): some 7,500 bytes below the temp dir.
  auto level = [](int i) {
    return std::string(250, i % 3 == 2 ? static_cast<char>(0xe0 + i % 16) : static_cast<char>('a' + i % 26));
  };
  constexpr int kLevels = 30;
  std::vector<sm::UniqueFd> chain;
  chain.push_back(sm::openDirAt(top.get(), "."));
  size_t depth = dir.path().size();
  for (int i = 0; i < kLevels; i++) {
    REQUIRE(mkdirat(chain.back().get(), level(i).c_str(), 0755) == 0);
    chain.push_back(sm::openDirAt(chain.back().get(), level(i)));
    depth += 1 + level(i).size();
  }
  REQUIRE(depth > PATH_MAX + 3000);
  int bottom = chain.back().get();
  int leaf = openat(bottom, "\xff-leaf", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(leaf >= 0);
  REQUIRE(write(leaf, "deep", 4) == 4);
  close(leaf);
  REQUIRE(mkdirat(bottom, "d", 0755) == 0);

  sm::DirListing l = sm::readDirectory(bottom);
  CHECK(names(l) == (std::vector<std::string>{"d", "\xff-leaf"}));
  REQUIRE_EQ(l.size(), size_t{2});
  CHECK_EQ(l.errs[1], 0);
  CHECK_EQ(l.stats[1].size, uint64_t{4});
  CHECK(S_ISDIR(l.stats[0].mode));
  // A relative path of several components under an ancestor's fd, itself far from the root.
  std::string rel;
  for (int i = kLevels - 4; i < kLevels; i++) rel += (rel.empty() ? "" : "/") + level(i);
  CHECK(names(sm::readDirectory(rel, chain[kLevels - 4].get())) == (std::vector<std::string>{"d", "\xff-leaf"}));
  // The same through one path string is refused by the kernel: the chain is what reaches it.
  std::string full = dir.path();
  for (int i = 0; i < kLevels; i++) full += "/" + level(i);
  CHECK_SYSERROR(sm::readDirectory(full), ENAMETOOLONG, "opendir");
}
