// Copies a batch of whole (small) files in C++: one call from JS per batch, not a dozen per file.
// Each file is written under a temporary name, checked against changes of its source while it
// was read, made durable per the fsync policy, given its metadata, and only then renamed into
// place; with verify, re-read from the device and compared.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "copy_range.h"
#include "file.h"
#include "lustre.h"
#include "metadata.h"

namespace sm {

enum class FsyncPolicy { Batch, File, None };

struct BatchOptions {
  FsyncPolicy fsync = FsyncPolicy::Batch;
  bool hash = true;
  bool verify = false;
  // Compare contents (XXH64 of both) of same-size files instead of size + mtime (rsync --checksum).
  bool checksum = false;
  // Look for a complete copy at the destination first (off when the caller has looked already).
  bool checkExisting = true;
  MetadataOptions metadata;
  const int32_t* cancel = nullptr;
  int64_t* budget = nullptr;
  // With a job's layout: keep its OST indices (else Lustre places the stripes afresh).
  bool keepOsts = false;
  // Where the file system clones files (reflinks), a copy is a clone: of its source when that is
  // on the same file system and cloneSource is set (as cp --reflink=auto), else of the job's
  // base (see FileJob).
  bool reflink = true;
  bool cloneSource = true;
  // A previous copy stands for a file (is linked) only if their xattrs and ACLs are the same too.
  bool compareXattrs = false;
};

struct FileOutcome {
  enum Status { Copied, Skipped, Linked, Unlinked, Failed } status = Failed;
  uint64_t bytes = 0, dataBytes = 0;
  uint64_t sharedBytes = 0;  // of a copy made as a clone (of its source or base): bytes left shared
  std::string digest;        // empty without hashing
  bool verified = false;
  // On failure: an errno name, or SOURCE_CHANGED / VERIFY_MISMATCH.
  std::string code, syscall, path, message;
  int err = 0;
};

// One file of a batch: where it is read, where it goes, and (rsync --link-dest) the previous
// copy's file that, if unchanged, is hard-linked instead of copied. `base`, an earlier version
// of the file (the previous copy's, whether or not it may be linked): where the file system can
// clone files (reflinks: XFS, Btrfs, ZFS 2.2, NFS 4.2 servers that can), the copy starts as a
// clone of it and only the blocks that differ are written, so the rest stay shared with it.
// On a Lustre destination, layout (when set) is the one the new file is created with; off
// Lustre, layoutRecord (when set) is stored in the kLayoutRecordXattr of the copy.
struct FileJob {
  std::string src, dst, prev, base;
  std::optional<lustre::Layout> layout;
  std::string layoutRecord;
};

// "<dir of path>/.sm-<xxh64 of its name>.tmp": hidden, beside the final name (so the rename is
// atomic), deterministic (a rerun reuses it), short whatever the name's length, and the same
// whichever way the directory is reached (a long path goes through /proc/self/fd/N). A name the
// source's directory holds (with or without ".journal") would be copied over it: then the hash
// is seeded 1, 2, ... until the name is one the source lacks (the same one on a rerun).
std::string tempPath(const std::string& path, const std::string& source = "");

// The outcome of each job, in order.
std::vector<FileOutcome> copyFiles(const BatchOptions& o, const std::vector<FileJob>& jobs);

// Files of one directory for linkFiles, by name: read in srcDir, linked into dstDir from
// prevDir. scanned[k] is names[k] as the caller's scan saw it: its size, mtime, mode, uid, gid.
struct LinkGroup {
  std::string srcDir, dstDir, prevDir;
  std::vector<std::string> names;
  std::vector<FileStat> scanned;
};

// Only the rsync --link-dest part of copyFiles, for files the caller expects unchanged: each one
// whose previous copy can stand for it, as scanned, is hard-linked (or Skipped, when the
// destination already holds it, with checkExisting); the rest are left (Unlinked) for a copy,
// which says why if it fails. As rsync, it compares what the scan saw (the version the caller
// records), so the source is not stat'ed again; grouped by directory, so each file costs one
// statx of the previous copy and a linkat, relative to the directories' descriptors: no path
// walk, no open. Outcomes in order of the names, group after group.
std::vector<FileOutcome> linkFiles(const BatchOptions& o, const std::vector<LinkGroup>& groups);

}  // namespace sm
