// Copies a batch of whole (small) files in C++: one call from JS per batch, not a dozen per file.
// Each file is written under a temporary name, checked against changes of its source while it
// was read, made durable per the fsync policy, given its metadata, and only then renamed into
// place; with verify, re-read from the device and compared.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "copy_range.h"
#include "metadata.h"

namespace sm {

enum class FsyncPolicy { Batch, File, None };

struct BatchOptions {
  std::string srcRoot, dstRoot;
  FsyncPolicy fsync = FsyncPolicy::Batch;
  bool hash = true;
  bool verify = false;
  // Compare contents (XXH64 of both) of same-size files instead of size + mtime (rsync --checksum).
  bool checksum = false;
  // Look for a complete copy at the destination first (off when the caller has looked already).
  bool checkExisting = true;
  // A previous copy (rsync --link-dest): a file unchanged there is hard-linked, not copied.
  std::string linkDest;
  MetadataOptions metadata;
  const int32_t* cancel = nullptr;
  int64_t* budget = nullptr;
};

struct FileOutcome {
  enum Status { Copied, Skipped, Linked, Failed } status = Failed;
  uint64_t bytes = 0, dataBytes = 0;
  std::string digest;  // empty without hashing
  bool verified = false;
  // On failure: an errno name, or SOURCE_CHANGED / VERIFY_MISMATCH.
  std::string code, syscall, path, message;
  int err = 0;
};

// "dir/.sm-<xxh64 of rel>.tmp": hidden, in the destination directory of rel (so the rename is
// atomic), deterministic (a rerun reuses it) and short whatever the final name's length.
std::string tempName(const std::string& rel);

// The outcome of each of rels (paths relative to the roots), in order.
std::vector<FileOutcome> copyFiles(const BatchOptions& o, const std::vector<std::string>& rels);

}  // namespace sm
