#include "copy_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>

#include "dir_scan.h"
#include "sys_error.h"

namespace sm {

namespace {

constexpr int kAttempts = 3;  // a file still changing after this many reads is reported

bool sameVersion(const FileStat& a, const FileStat& b) {
  return a.size == b.size && a.mtimeSec == b.mtimeSec && a.mtimeNsec == b.mtimeNsec && a.ctimeSec == b.ctimeSec &&
         a.ctimeNsec == b.ctimeNsec;
}

// An error of our own (not an errno), carried like a SysError.
struct CopyFailure {
  std::string code, path, message;
};

void fail(FileOutcome& out, const SysError& e) {
  out.status = FileOutcome::Failed;
  out.code = e.code();
  out.err = e.err;
  out.syscall = e.syscall;
  out.path = displayPath(e.path);
  out.message = e.what();
}

void fail(FileOutcome& out, const CopyFailure& f) {
  out.status = FileOutcome::Failed;
  out.code = f.code;
  out.path = displayPath(f.path);
  out.message = f.message + ": " + out.path;
}

// A file whose data is written, waiting for durability and its final name: either still
// nameless (O_TMPFILE, kept open) or under its temporary name.
struct Pending {
  size_t index;
  std::string tmp, dst, src;  // tmp: empty until a named temporary file is needed
  bool sparse;
  std::unique_ptr<File> nameless;
};

// The temporary name, worked out when first needed: a nameless file never needs one, and
// working it out looks into the source's directory (two lookups on a metadata server).
const std::string& tmpOf(Pending& p) {
  if (p.tmp.empty()) p.tmp = tempPath(p.dst, p.src);
  return p.tmp;
}

// Removes the temporary file of a copy that did not make it, if it had one.
void dropTemp(const Pending& p) {
  if (!p.tmp.empty()) unlink(p.tmp.c_str());
}

// Where a file is written: preferably an unnamed inode in its destination directory
// (O_TMPFILE), which gets its name only when complete and durable -- nothing partial is ever
// visible, an interrupted run leaves no debris, and it costs one directory insertion instead
// of a create and a rename. File systems without O_TMPFILE get a named temporary file.
// A Lustre layout needs a named file: liblustreapi creates files only by name.
std::unique_ptr<File> openTarget(const BatchOptions& o, const FileJob& job, Pending& p, bool& tmpfileRefused) {
  if (job.layout) {
    unlink(tmpOf(p).c_str());  // left by an interrupted run
    close(lustre::createWithLayout(p.tmp, O_WRONLY | O_EXCL | O_CLOEXEC, 0600, *job.layout, o.keepOsts));
    return std::make_unique<File>(p.tmp, opening(O_RDWR, 0600));
  }
  if (!tmpfileRefused) {
    size_t slash = p.dst.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : p.dst.substr(0, slash);
    try {
      OpenOptions o = opening(O_TMPFILE | O_RDWR, 0600);
      o.shownAs = p.dst;
      return std::make_unique<File>(dir, o);
    } catch (const SysError& e) {
      if (e.err != EOPNOTSUPP && e.err != EISDIR && e.err != EINVAL) throw;
      tmpfileRefused = true;
    }
  }
  return std::make_unique<File>(tmpOf(p), opening(O_RDWR | O_CREAT | O_TRUNC, 0600));
}

// A file named relative to an open directory; with dir AT_FDCWD, name is a whole path.
struct At {
  int dir;
  const std::string& name;
  // A path for what takes paths only (a deep one goes through /proc/self/fd, as elsewhere).
  std::string path() const { return dir == AT_FDCWD ? name : "/proc/self/fd/" + std::to_string(dir) + "/" + name; }
};

// Whether a clone was made; notes a file system that never will in `refused`.
bool cloned(File::Clone c, bool& refused) {
  if (c == File::Clone::Unsupported) refused = true;
  return c == File::Clone::Cloned;
}

// XXH64 of a whole file, read buffered (these are small files).
std::string digestOf(const std::string& path) {
  File f(path, opening(O_RDONLY | O_NOFOLLOW));
  Xxh64 hash;
  CopyOptions copy;
  copy.hash = &hash;
  copyRange(f, nullptr, 0, 0, kToEof, copy);
  return Xxh64::hex(hash.digest());
}

// The destination already holds this version: same size and mtime (an earlier, interrupted
// run finished it), or with checksum, same size and contents.
bool alreadyThere(const BatchOptions& o, At src, At dst, const FileStat& st) {
  FileStat d;
  if (!lstatAt(dst.dir, dst.name, d) || !S_ISREG(d.mode) || d.size != st.size) return false;
  if (!o.checksum) return d.mtimeSec == st.mtimeSec && d.mtimeNsec == st.mtimeNsec;
  try {
    return digestOf(src.path()) == digestOf(dst.path());
  } catch (const SysError&) {
    return false;
  }
}

// A file of the previous copy that can stand for this one: same size, mtime, mode (and owner).
bool unchangedIn(const BatchOptions& o, At src, At prev, const FileStat& st) {
  FileStat p;
  return lstatAt(prev.dir, prev.name, p) && S_ISREG(p.mode) && p.size == st.size && p.mtimeSec == st.mtimeSec &&
         p.mtimeNsec == st.mtimeNsec && p.mode == st.mode &&
         (!o.metadata.owner || (p.uid == st.uid && p.gid == st.gid)) &&
         (!o.compareXattrs || copiedXattrs(src.path()) == copiedXattrs(prev.path()));
}

// Whether a regular file, as `now` says it is, needs copying at all, by stat data alone: what is
// skipped or linked is never opened (a snapshot of 10^5 unchanged files is 10^5 links, not also
// 10^5 opens). `shown` names the destination in errors.
bool skippedOrLinked(const BatchOptions& o, At src, const FileStat& now, At dst, const At* prev,
                     const std::string& shown, FileOutcome& out) {
  if (o.checkExisting && alreadyThere(o, src, dst, now)) {
    out.status = FileOutcome::Skipped;
  } else if (prev && unchangedIn(o, src, *prev, now)) {
    // A new name for the previous copy's inode: one link where the name is free (a new
    // snapshot); over an existing file, linked aside and renamed, atomically like a copy.
    if (linkat(prev->dir, prev->name.c_str(), dst.dir, dst.name.c_str(), 0) != 0) {
      if (errno != EEXIST) throwErrno("link", shown);
      std::string tmp = tempPath(dst.name, src.path());
      unlinkat(dst.dir, tmp.c_str(), 0);
      if (linkat(prev->dir, prev->name.c_str(), dst.dir, tmp.c_str(), 0) != 0)
        throwErrno("link", tempPath(shown, src.path()));
      if (renameat(dst.dir, tmp.c_str(), dst.dir, dst.name.c_str()) != 0) throwErrno("rename", shown);
    }
    out.status = FileOutcome::Linked;
  } else {
    return false;
  }
  out.bytes = now.size;
  return true;
}

// What the file systems of a batch were found unable to do, so the rest of the batch need not try.
struct Refusals {
  bool tmpfile = false, sourceClone = false, baseClone = false;
};

// Writes one file where it waits for its name; returns false when it was skipped or linked.
bool writeOne(const BatchOptions& o, const FileJob& job, FileOutcome& out, Pending& p, Refusals& refused) {
  const std::string& src = job.src;
  p.dst = job.dst;
  p.src = job.src;
  At prev{AT_FDCWD, job.prev};
  // A file that is no longer regular (or not there) goes on to the open below, which says why.
  FileStat now;
  if ((o.checkExisting || !job.prev.empty()) && lstatAt(AT_FDCWD, src, now) && S_ISREG(now.mode) &&
      skippedOrLinked(o, {AT_FDCWD, src}, now, {AT_FDCWD, p.dst}, job.prev.empty() ? nullptr : &prev, p.dst, out))
    return false;
  for (int attempt = 1;; attempt++) {
    // O_NOFOLLOW: a file replaced by a symlink since the scan is refused, not followed.
    // Small files never use O_DIRECT: it makes them ~10x slower (FACTS: 270 vs 3,100 files/s).
    File s(src, opening(O_RDONLY | O_NOFOLLOW));
    FileStat before = s.stat();
    std::unique_ptr<File> target = openTarget(o, job, p, refused.tmpfile);
    File& d = *target;
    p.sparse = before.blocks * 512 < before.size;
    // Where it can, the copy is a clone of the source itself (as cp --reflink=auto): nothing is
    // written, and what is hashed is the clone's own bytes, read back. Else, of the base, with
    // only the blocks that differ written -- not for a sparse source, whose holes must read as
    // zeros, not as the base's data.
    bool ofSource = o.reflink && o.cloneSource && !job.layout && !refused.sourceClone &&
                    cloned(d.cloneFrom(s), refused.sourceClone);
    bool ofBase = !ofSource && o.reflink && !p.sparse && !job.base.empty() && !job.layout && !refused.baseClone &&
                  cloned(d.cloneFrom(job.base), refused.baseClone);
    // Sized for a trailing hole, or from the base's size; never a clone already of the right
    // size (a truncate zeroes the tail of the last block, which unshares it).
    if ((p.sparse && !ofSource) || (ofBase && d.stat().size != before.size)) d.truncate(before.size);
    Xxh64 hash;
    CopyOptions copy;
    copy.sparse = p.sparse;
    copy.writeChanges = ofBase;
    copy.hash = o.hash ? &hash : nullptr;
    copy.cancel = o.cancel;
    copy.budget = o.budget;
    if (!ofSource) copy.knownSize = before.size;
    CopyResult r;
    try {
      if (!ofSource) {
        r = copyRange(s, &d, 0, 0, kToEof, copy);
      } else if (o.hash) {
        // The digest of the clone's own bytes; with verify, of the source's, so that the
        // re-read of the clone from the device proves the clone equals its source.
        r = copyRange(o.verify ? s : d, nullptr, 0, 0, kToEof, copy);
        r.sharedBytes = r.dataBytes;
      } else {
        r.bytes = r.dataBytes = r.sharedBytes = d.stat().size;  // nothing to read
      }
    } catch (const SysError& e) {
      if (e.err != ENODATA) throw;  // the file shrank while read: a change like any other
      r.bytes = 0;
    }
    if (!sameVersion(before, s.stat()) || r.bytes != before.size) {
      if (attempt < kAttempts) continue;
      throw CopyFailure{"SOURCE_CHANGED", src, "source changed while it was being read"};
    }
    if (o.fsync == FsyncPolicy::File) d.fdatasync();
    copyMetadataFd(s.fd(), d.fd(), before, o.metadata, p.dst);
    // A target without user xattrs keeps the data; only the layout record is lost.
    if (!job.layoutRecord.empty() &&
        fsetxattr(d.fd(), lustre::kLayoutRecordXattr, job.layoutRecord.data(), job.layoutRecord.size(), 0) != 0 &&
        errno != ENOTSUP)
      throwErrno("fsetxattr", p.dst);
    out.bytes = r.bytes;
    out.dataBytes = r.dataBytes;
    out.sharedBytes = r.sharedBytes;
    if (o.hash) out.digest = Xxh64::hex(hash.digest());
    if (!refused.tmpfile && !job.layout)
      p.nameless = std::move(target);
    else
      d.close();
    return true;
  }
}

// Re-reads the destination with O_DIRECT, so the bytes come from the device, not the page cache.
void verifyOne(const Pending& p, FileOutcome& out) {
  File d(p.dst, opening(O_RDONLY, 0, true));
  Xxh64 hash;
  CopyOptions copy;
  copy.sparse = p.sparse;
  copy.hash = &hash;
  copyRange(d, nullptr, 0, 0, kToEof, copy);
  if (Xxh64::hex(hash.digest()) != out.digest)
    throw CopyFailure{"VERIFY_MISMATCH", p.dst, "destination differs from source after the copy"};
  out.verified = true;
}

}  // namespace

std::string tempPath(const std::string& path, const std::string& source) {
  auto dirOf = [](const std::string& p) {
    size_t slash = p.rfind('/');
    return slash == std::string::npos ? std::string() : p.substr(0, slash + 1);
  };
  std::string dir = dirOf(path);
  std::string name = path.substr(dir.size());
  std::string sourceDir = source.empty() ? "" : dirOf(source);
  FileStat st;
  auto inSource = [&](const std::string& n) {
    return !source.empty() && lstatAt(AT_FDCWD, sourceDir.empty() ? n : sourceDir + n, st);
  };
  for (uint64_t seed = 0;; seed++) {
    Xxh64 h(seed);
    h.update(name.data(), name.size());
    std::string t = ".sm-" + Xxh64::hex(h.digest()) + ".tmp";
    if (!inSource(t) && !inSource(t + ".journal")) return dir + t;
  }
}

std::vector<FileOutcome> copyFiles(const BatchOptions& o, const std::vector<FileJob>& jobs) {
  std::vector<FileOutcome> out(jobs.size());
  std::vector<Pending> pending;
  pending.reserve(jobs.size());
  Refusals refused;
  for (size_t i = 0; i < jobs.size(); i++) {
    Pending p{i, "", "", "", false, nullptr};
    try {
      if (writeOne(o, jobs[i], out[i], p, refused)) pending.push_back(std::move(p));
    } catch (const SysError& e) {
      fail(out[i], e);
      dropTemp(p);
    } catch (const CopyFailure& f) {
      fail(out[i], f);
      dropTemp(p);
    }
  }
  if (o.fsync == FsyncPolicy::Batch && !pending.empty()) {
    // One flush of the file system makes the whole batch durable before any of it is named.
    try {
      const Pending& first = pending.front();
      if (first.nameless) {
        first.nameless->syncfs();
      } else {
        File any(first.tmp, opening(O_RDONLY));
        any.syncfs();
      }
    } catch (const SysError& e) {
      for (const Pending& p : pending) fail(out[p.index], e), dropTemp(p);
      return out;
    }
  }
  for (Pending& p : pending) {
    FileOutcome& r = out[p.index];
    try {
      if (p.nameless) {
        try {
          p.nameless->linkAs(p.dst);
        } catch (const SysError& e) {
          if (e.err != EEXIST) throw;
          // Replacing an older version: name it aside, then rename over it (atomic).
          unlink(tmpOf(p).c_str());
          p.nameless->linkAs(p.tmp);
          if (rename(p.tmp.c_str(), p.dst.c_str()) != 0) throwErrno("rename", p.dst);
        }
        p.nameless.reset();
      } else if (rename(p.tmp.c_str(), p.dst.c_str()) != 0) {
        throwErrno("rename", p.dst);
      }
      r.status = FileOutcome::Copied;
      if (o.verify) verifyOne(p, r);
    } catch (const SysError& e) {
      bool named = r.status == FileOutcome::Copied;
      fail(r, e);
      // Not renamed into place (a directory stands there, say): no named temporary left behind.
      if (!named) dropTemp(p);
    } catch (const CopyFailure& f) {
      fail(r, f);
      // A copy that failed verification must not stay where a rerun would take it as complete.
      unlink(p.dst.c_str());
    }
  }
  return out;
}

std::vector<FileOutcome> linkFiles(const BatchOptions& o, const std::vector<LinkGroup>& groups) {
  size_t total = 0;
  for (const LinkGroup& g : groups) total += g.names.size();
  std::vector<FileOutcome> out(total);
  size_t i = 0;
  for (const LinkGroup& g : groups) {
    UniqueFd src, dst, prev;
    try {
      src = openDirAt(AT_FDCWD, g.srcDir);
      dst = openDirAt(AT_FDCWD, g.dstDir);
      prev = openDirAt(AT_FDCWD, g.prevDir);
    } catch (const SysError&) {
      // Left to the copy, which reports what is wrong with the source or destination (a
      // previous copy without this directory is no error: its files are simply copied).
      for (size_t k = 0; k < g.names.size(); k++) out[i++].status = FileOutcome::Unlinked;
      continue;
    }
    for (size_t k = 0; k < g.names.size(); k++) {
      const std::string& name = g.names[k];
      FileOutcome& r = out[i++];
      std::string shown = g.dstDir + "/" + name;
      At previous{prev.get(), name};
      try {
        if (!skippedOrLinked(o, {src.get(), name}, g.scanned[k], {dst.get(), name}, &previous, shown, r))
          r.status = FileOutcome::Unlinked;
      } catch (const SysError& e) {
        fail(r, e);
      }
    }
  }
  return out;
}

}  // namespace sm
