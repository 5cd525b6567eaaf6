// A failed system call, carried with everything a user needs to act on it.
#pragma once
#include <stdexcept>
#include <string>

namespace sm {

class SysError : public std::runtime_error {
 public:
  SysError(int err, std::string syscall, std::string path);
  int err;              // positive errno value
  std::string syscall;  // e.g. "open"
  std::string path;     // raw path bytes; may be empty
  // "ENOENT" etc.; "E<number>" for values glibc has no name for.
  std::string code() const;
};

// Throws SysError(errno, syscall, path) -- call right after a failed syscall.
[[noreturn]] void throwErrno(const char* syscall, const std::string& path = "");

// Path bytes rendered for humans: valid UTF-8 is kept, every other byte becomes \xNN.
std::string displayPath(const std::string& raw);

}  // namespace sm
