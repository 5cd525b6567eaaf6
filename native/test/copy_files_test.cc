// sm::copyFiles: a batch of whole files on real file systems (ext4 with O_TMPFILE, tmpfs),
// under the sanitizers: contents, metadata, skips, --link-dest, verification, failures.
#include "copy_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "file.h"
#include "harness.h"

namespace {

sm::BatchOptions options(bool verify) {
  sm::BatchOptions o;
  o.verify = verify;
  o.metadata.owner = geteuid() == 0;
  return o;
}

// A linkFiles group whose files are as a scan of srcDir finds them now.
sm::LinkGroup scannedGroup(const std::string& srcDir, const std::string& dstDir, const std::string& prevDir,
                           std::vector<std::string> names) {
  sm::LinkGroup g{srcDir, dstDir, prevDir, std::move(names), {}};
  for (const std::string& n : g.names) g.scanned.push_back(sm::statPath(srcDir + "/" + n, false));
  return g;
}

}  // namespace

TEST(copy_files_copies_contents_metadata_and_leaves_nothing_behind) {
  for (const char* base : t::kBases) {
    t::TempDir dir(base);
    mkdir((dir / "src").c_str(), 0755);
    mkdir((dir / "dst").c_str(), 0755);
    std::vector<sm::FileJob> jobs;
    for (int i = 0; i < 5; i++) {
      std::string name = "f" + std::to_string(i) + (i == 3 ? "\xff\n" : "");
      t::writeFile(dir / ("src/" + name), t::pattern(i * 7001, i));
      jobs.push_back({dir / ("src/" + name), dir / ("dst/" + name), ""});
    }
    // A sparse one: a hole, then data.
    t::writeFile(dir / "src/sparse", t::pattern(4096, 9), 8 << 20);
    jobs.push_back({dir / "src/sparse", dir / "dst/sparse", ""});
    chmod((dir / "src/f1").c_str(), 0640);
    setxattr((dir / "src/f2").c_str(), "user.k", "v", 1, 0);
    struct timespec times[2] = {{1000, 5}, {2000, 7}};
    utimensat(AT_FDCWD, (dir / "src/f4").c_str(), times, 0);

    std::vector<sm::FileOutcome> out = sm::copyFiles(options(true), jobs);
    REQUIRE_EQ(out.size(), jobs.size());
    for (size_t i = 0; i < jobs.size(); i++) {
      CHECK_EQ(out[i].status, sm::FileOutcome::Copied);
      CHECK(out[i].verified);
      CHECK_EQ(t::readFile(jobs[i].dst), t::readFile(jobs[i].src));
    }
    sm::FileStat f1 = sm::statPath(dir / "dst/f1", false), f4 = sm::statPath(dir / "dst/f4", false);
    CHECK_EQ(f1.mode & 07777, 0640u);
    CHECK_EQ(f4.mtimeSec, 2000);
    CHECK_EQ(f4.mtimeNsec, 7u);
    char v[8] = {};
    CHECK_EQ(getxattr((dir / "dst/f2").c_str(), "user.k", v, sizeof v), 1);
    sm::FileStat sparse = sm::statPath(dir / "dst/sparse", false);
    CHECK_EQ(sparse.size, (8u << 20) + 4096);
    CHECK_LE(sparse.blocks * 512, 64u * 1024);
    // Nothing else in the destination: no temporary names.
    int entries = 0;
    if (DIR* d = opendir((dir / "dst").c_str())) {
      while (struct dirent* e = readdir(d)) entries += e->d_name[0] != '.';
      closedir(d);
    }
    CHECK_EQ(entries, 6);

    // Again: everything is already there.
    out = sm::copyFiles(options(false), jobs);
    for (const sm::FileOutcome& r : out) CHECK_EQ(r.status, sm::FileOutcome::Skipped);
  }
}

TEST(copy_files_replaces_an_older_version_and_links_from_a_previous_copy) {
  t::TempDir dir("/var/tmp");
  t::writeFile(dir / "a", "new contents");
  t::writeFile(dir / "old", "older");  // a different, existing destination
  t::writeFile(dir / "prev", "new contents");
  sm::FileStat a = sm::statPath(dir / "a", false);
  struct timespec times[2] = {{a.atimeSec, a.atimeNsec}, {a.mtimeSec, a.mtimeNsec}};
  utimensat(AT_FDCWD, (dir / "prev").c_str(), times, 0);
  chmod((dir / "prev").c_str(), a.mode & 07777);

  std::vector<sm::FileOutcome> out = sm::copyFiles(options(false), {{dir / "a", dir / "old", ""}});
  CHECK_EQ(out[0].status, sm::FileOutcome::Copied);
  CHECK_EQ(t::readFile(dir / "old"), "new contents");

  out = sm::copyFiles(options(false), {{dir / "a", dir / "snap", dir / "prev"}});
  CHECK_EQ(out[0].status, sm::FileOutcome::Linked);
  CHECK_EQ(sm::statPath(dir / "snap", false).ino, sm::statPath(dir / "prev", false).ino);

  // linkFiles, by directory: what is unchanged is linked, even over an older file; the rest is
  // left alone, and so is a group whose previous directory does not exist.
  sm::BatchOptions links = options(false);
  links.checkExisting = false;  // as the engine asks (it has looked already)
  t::writeFile(dir / "b", "other contents, other size");
  mkdir((dir / "base").c_str(), 0755);
  mkdir((dir / "next").c_str(), 0755);
  mkdir((dir / "sub").c_str(), 0755);
  rename((dir / "prev").c_str(), (dir / "base/a").c_str());
  t::writeFile(dir / "next/a", "older");
  t::writeFile(dir / "sub/a", "new contents");
  out = sm::linkFiles(links, {scannedGroup(dir.path(), dir / "next", dir / "base", {"a", "b"}),
                              scannedGroup(dir / "sub", dir / "next", dir / "no-such-dir", {"a"})});
  REQUIRE_EQ(out.size(), 3u);
  CHECK_EQ(out[0].status, sm::FileOutcome::Linked);
  CHECK_EQ(out[0].bytes, 12u);
  CHECK_EQ(sm::statPath(dir / "next/a", false).ino, sm::statPath(dir / "base/a", false).ino);
  CHECK_EQ(out[1].status, sm::FileOutcome::Unlinked);  // no "b" in the previous copy
  CHECK(access((dir / "next/b").c_str(), F_OK) != 0);
  CHECK_EQ(out[2].status, sm::FileOutcome::Unlinked);  // no previous directory
  // What is compared is the file as the scan saw it (the version the caller records), not as it
  // is now: a scan that saw another mtime leaves it.
  sm::LinkGroup stale = scannedGroup(dir.path(), dir / "next", dir / "base", {"a"});
  stale.scanned[0].mtimeNsec ^= 1;
  out = sm::linkFiles(links, {stale});
  CHECK_EQ(out[0].status, sm::FileOutcome::Unlinked);
  // With checkExisting, a destination that holds the version is skipped, not linked again.
  links.checkExisting = true;
  out = sm::linkFiles(links, {scannedGroup(dir.path(), dir / "next", dir / "base", {"a"})});
  CHECK_EQ(out[0].status, sm::FileOutcome::Skipped);
  // A name the link cannot take (a directory stands there): that file fails, naming its path.
  links.checkExisting = false;
  unlink((dir / "next/a").c_str());
  mkdir((dir / "next/a").c_str(), 0755);
  out = sm::linkFiles(links, {scannedGroup(dir.path(), dir / "next", dir / "base", {"a"})});
  CHECK_EQ(out[0].status, sm::FileOutcome::Failed);
  CHECK_EQ(out[0].syscall, std::string("rename"));
  CHECK(out[0].path.find("next/a") != std::string::npos);
}

TEST(copy_files_reports_each_failure_and_copies_the_rest) {
  t::TempDir dir("/var/tmp");
  t::writeFile(dir / "ok", "fine");
  std::vector<sm::FileOutcome> out = sm::copyFiles(
      options(false),
      {{dir / "missing", dir / "m", ""}, {dir / "ok", dir / "ok2", ""}, {dir / "ok", dir / "no/dir", ""}});
  CHECK_EQ(out[0].status, sm::FileOutcome::Failed);
  CHECK_EQ(out[0].code, std::string("ENOENT"));
  CHECK_EQ(out[0].syscall, std::string("open"));
  CHECK_EQ(out[1].status, sm::FileOutcome::Copied);
  CHECK_EQ(out[2].status, sm::FileOutcome::Failed);
  CHECK(out[2].path.find("no/dir") != std::string::npos);
  // The temporary name depends on the file's name only, not on how its directory is reached.
  std::string direct = sm::tempPath("/x/y/name"), anchored = sm::tempPath("/proc/self/fd/9/name");
  CHECK_EQ(direct.substr(0, 9), std::string("/x/y/.sm-"));
  CHECK_EQ(direct.substr(4), anchored.substr(15));
  // A source directory holding that name (or its journal's) would copy a file over it: another
  // name is taken, the same one each time.
  t::writeFile(dir / "src_name", "x");
  std::string first = sm::tempPath(dir / "name", dir / "src_name");
  CHECK_EQ(first, sm::tempPath(dir / "name"));
  std::string taken = first.substr(first.rfind('/') + 1);
  t::writeFile(dir / taken, "a user's file");
  std::string second = sm::tempPath(dir / "name", dir / "src_name");
  CHECK(second != first);
  CHECK_EQ(second, sm::tempPath(dir / "name", dir / "src_name"));
  t::writeFile(dir / (second.substr(second.rfind('/') + 1) + ".journal"), "another");
  std::string third = sm::tempPath(dir / "name", dir / "src_name");
  CHECK(third != first && third != second);
  CHECK_EQ(third.substr(0, third.rfind('/') + 5), dir / ".sm-");
}

TEST(copy_files_with_a_base_copies_right_whether_or_not_it_can_clone) {
  // Where the file system cannot clone (ext4, tmpfs: the test bases), a base changes nothing:
  // the copy is written afresh. (Sharing itself is tested on XFS, in test/reflink.test.ts.)
  for (const char* root : t::kBases) {
    t::TempDir dir(root);
    std::string old = t::pattern(50000, 1), now = old;
    now[0] ^= 1;
    t::writeFile(dir / "base", old);
    t::writeFile(dir / "src", now);
    // A sparse source whose base has data where it has a hole: the hole must read as zeros.
    t::writeFile(dir / "base-sparse", std::string(4 << 20, 'x'));
    t::writeFile(dir / "sparse", t::pattern(4096, 2), 3 << 20);
    sm::FileJob plain{dir / "src", dir / "dst", ""}, sparse{dir / "sparse", dir / "dst-sparse", ""};
    plain.base = dir / "base";
    sparse.base = dir / "base-sparse";
    sm::FileJob noBase{dir / "src", dir / "dst-2", ""};
    noBase.base = dir / "missing";
    std::vector<sm::FileOutcome> out = sm::copyFiles(options(true), {plain, sparse, noBase});
    for (const sm::FileOutcome& r : out) {
      CHECK_EQ(r.status, sm::FileOutcome::Copied);
      CHECK(r.verified);
      CHECK_EQ(r.sharedBytes, 0u);
    }
    CHECK(t::readFile(dir / "dst") == now);
    CHECK(t::readFile(dir / "dst-2") == now);
    CHECK(t::readFile(dir / "dst-sparse") == t::readFile(dir / "sparse"));
  }
}
