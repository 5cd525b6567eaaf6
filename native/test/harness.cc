#include "harness.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "xxh64.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif

namespace t {

namespace {

struct Test {
  const char* name;
  void (*fn)();
};

std::vector<Test>& registry() {
  static std::vector<Test> tests;
  return tests;
}

struct Current {
  int failures = 0;
  int knownBugs = 0;
  bool skipped = false;
  std::vector<std::string> lines;
};
Current* current = nullptr;

void say(const std::string& line) {
  if (current)
    current->lines.push_back(line);
  else
    fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace

void registerTest(const char* name, void (*fn)()) { registry().push_back({name, fn}); }

void fail(const char* file, int line, const std::string& message) {
  const char* base = strrchr(file, '/');
  say(std::string("    ") + (base ? base + 1 : file) + ":" + std::to_string(line) + ": " + message);
  if (current) current->failures++;
}

void knownBug(const char* file, int line, bool fixed, const std::string& what) {
  const char* base = strrchr(file, '/');
  std::string where = std::string(base ? base + 1 : file) + ":" + std::to_string(line);
  if (fixed) {
    fail(file, line, "KNOWN_BUG no longer reproduces (fixed? make it a CHECK): " + what);
  } else {
    say("    known bug (expected failure) at " + where + ": " + what);
    if (current) current->knownBugs++;
  }
}

void note(const std::string& message) { say("    note: " + message); }

void skip(const std::string& why) {
  say("    skipped: " + why);
  if (current) current->skipped = true;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out + "\"";
}

// ---- files ------------------------------------------------------------------------------------

TempDir::TempDir(const std::string& base) {
  std::string templ = base + "/sm-native-test.XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp " + templ + ": " + strerror(errno));
  path_ = buf.data();
}

static int removeOne(const char* path, const struct stat*, int, struct FTW*) {
  if (::remove(path) != 0) fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
  return 0;
}

TempDir::~TempDir() {
  if (getenv("SM_KEEP_TMP")) {
    fprintf(stderr, "kept %s\n", path_.c_str());
    return;
  }
  nftw(path_.c_str(), removeOne, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void fillPattern(char* p, size_t n, uint64_t seed) {
  uint64_t state = seed;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = splitmix(state);
    memcpy(p + i, &v, n - i < 8 ? n - i : 8);
  }
}

std::string pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  fillPattern(s.data(), n, seed);
  return s;
}

std::string readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path + ": " + strerror(errno));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw std::runtime_error("read " + path + ": " + strerror(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void writeFile(const std::string& path, const std::string& data, off_t offset, bool truncate) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
  if (fd < 0) throw std::runtime_error("open " + path + ": " + strerror(errno));
  // lseek + write(2), not pwrite: the tests interpose pwrite.
  if (lseek(fd, offset, SEEK_SET) != offset) {
    ::close(fd);
    throw std::runtime_error("lseek " + path + ": " + strerror(errno));
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw std::runtime_error("write " + path + ": " + strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

uint64_t xxh64(const void* p, size_t n) { return XXH64(p, n, 0); }

int runInChild(const std::function<int()>& fn, std::string* err) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + strerror(errno));
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    dup2(pipefd[1], 2);
    int rc = 99;
    try {
      rc = fn();
    } catch (const std::exception& e) {
      fprintf(stderr, "child: exception: %s\n", e.what());
      rc = 98;
    }
    fflush(stderr);
    _exit(rc);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (err) *err = out;
  return status;
}

bool asanBuild() {
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
}

}  // namespace t

// ---- runner -----------------------------------------------------------------------------------

int main(int argc, char** argv) {
  // Optional arguments: substrings of test names to run (all tests when none).
  auto selected = [&](const char* name) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; i++)
      if (strstr(name, argv[i])) return true;
    return false;
  };
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int passed = 0, failed = 0, skipped = 0, knownBugs = 0;
  auto started = std::chrono::steady_clock::now();
  for (const auto& test : t::registry()) {
    if (!selected(test.name)) continue;
    t::Current cur;
    t::current = &cur;
    auto t0 = std::chrono::steady_clock::now();
    try {
      test.fn();
    } catch (const t::Abort&) {
      // already recorded
    } catch (const sm::SysError& e) {
      cur.lines.push_back(std::string("    unexpected SysError: ") + e.what());
      cur.failures++;
    } catch (const std::exception& e) {
      cur.lines.push_back(std::string("    unexpected exception: ") + e.what());
      cur.failures++;
    } catch (...) {
      cur.lines.push_back("    unexpected exception of unknown type");
      cur.failures++;
    }
    t::current = nullptr;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    const char* status = cur.failures ? "FAIL" : cur.skipped ? "skip" : "ok  ";
    printf("%s %s (%lld ms)\n", status, test.name, static_cast<long long>(ms));
    for (const auto& line : cur.lines) printf("%s\n", line.c_str());
    if (cur.failures)
      failed++;
    else
      passed++;
    if (cur.skipped && !cur.failures) skipped++;
    knownBugs += cur.knownBugs;
  }
  auto total =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  printf("%s build, %lld ms; %d skipped (counted as passed), %d known bug(s) reported as expected failures\n",
         t::asanBuild() ? "ASan" : "non-ASan", static_cast<long long>(total), skipped, knownBugs);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
