#include "sys_error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sm {

static std::string errnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name) return name;
  return "E" + std::to_string(err);
}

static std::string describe(int err, const std::string& syscall, const std::string& path) {
  // Same shape as Node's fs errors: "ENOENT: no such file or directory, open '/x'".
  std::string msg = errnoName(err) + ": " + strerror(err) + ", " + syscall;
  if (!path.empty()) msg += " '" + displayPath(path) + "'";
  return msg;
}

SysError::SysError(int e, std::string sc, std::string p)
    : std::runtime_error(describe(e, sc, p)), err(e), syscall(std::move(sc)), path(std::move(p)) {}

std::string SysError::code() const { return errnoName(err); }

void throwErrno(const char* syscall, const std::string& path) { throw SysError(errno, syscall, path); }

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
static size_t utf8SequenceLength(const std::string& s, size_t i) {
  unsigned char c = s[i];
  size_t n = c < 0x80                   ? 1
             : (c >= 0xC2 && c <= 0xDF) ? 2
             : (c >= 0xE0 && c <= 0xEF) ? 3
             : (c >= 0xF0 && c <= 0xF4) ? 4
                                        : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  unsigned char c1 = n > 1 ? s[i + 1] : 0;
  if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
    return 0;
  return n;
}

std::string displayPath(const std::string& raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size();) {
    size_t n = utf8SequenceLength(raw, i);
    if (n == 0) {
      char hex[5];
      snprintf(hex, sizeof hex, "\\x%02X", static_cast<unsigned char>(raw[i]));
      out += hex;
      i++;
    } else {
      out.append(raw, i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace sm
