/* Smoke test of the liblustreapi double: llapi-smoke path/to/liblustreapi.so.1
 *
 * Loads the library with dlopen like stripemover's addon, resolves every symbol, and checks the
 * behaviour README.md promises on a scratch directory under $TMPDIR (default /tmp). Prints
 * "N passed, N failed"; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layout_text.h"

#define INVALID 0x1000000000000001ULL
#define DEFAULT (INVALID + 1)
#define WIDE (INVALID + 2)
#define RAID0 0ULL
#define MDT 2ULL
#define OVERSTRIPING 4ULL
#define USE_FIRST 1
#define USE_LAST 2
#define USE_NEXT 3
#define USE_PREV 4
#define MiB (1024ULL * 1024)
#define OSTS 4

struct llapi_layout;
struct lu_fid {
  uint64_t f_seq;
  uint32_t f_oid, f_ver;
};

/* The prototypes of lustre/lustreapi.h. */
static struct llapi_layout *(*get_by_path)(const char *, int);
static struct llapi_layout *(*get_by_fd)(int, int);
static struct llapi_layout *(*get_by_fid)(const char *, const struct lu_fid *, int);
static void (*lfree)(struct llapi_layout *);
static struct llapi_layout *(*alloc)(void);
static bool (*is_composite)(struct llapi_layout *);
static int (*comp_use)(struct llapi_layout *, uint32_t);
static int (*comp_add)(struct llapi_layout *);
static int (*extent_get)(const struct llapi_layout *, uint64_t *, uint64_t *);
static int (*extent_set)(struct llapi_layout *, uint64_t, uint64_t);
static int (*flags_get)(const struct llapi_layout *, uint32_t *);
static int (*flags_set)(struct llapi_layout *, uint32_t);
static int (*count_get)(const struct llapi_layout *, uint64_t *);
static int (*count_set)(struct llapi_layout *, uint64_t);
static int (*size_get)(const struct llapi_layout *, uint64_t *);
static int (*size_set)(struct llapi_layout *, uint64_t);
static int (*pattern_get)(const struct llapi_layout *, uint64_t *);
static int (*pattern_set)(struct llapi_layout *, uint64_t);
static int (*ost_get)(const struct llapi_layout *, uint64_t, uint64_t *);
static int (*ost_set)(struct llapi_layout *, int, uint64_t);
static int (*ost_reset)(struct llapi_layout *);
static int (*pool_get)(const struct llapi_layout *, char *, size_t);
static int (*pool_set)(struct llapi_layout *, const char *);
static int (*file_open)(const char *, int, mode_t, const struct llapi_layout *);
static int (*file_create)(const char *, int, int, const struct llapi_layout *);
static int (*path2fid)(const char *, struct lu_fid *);
static int (*fd2fid)(int, struct lu_fid *);
static int (*fid2path)(const char *, const char *, char *, int, long long *, int *);

static const struct {
  const char *name;
  void **slot;
} symbols[] = {
    {"llapi_layout_get_by_path", (void **)&get_by_path},
    {"llapi_layout_get_by_fd", (void **)&get_by_fd},
    {"llapi_layout_get_by_fid", (void **)&get_by_fid},
    {"llapi_layout_free", (void **)&lfree},
    {"llapi_layout_alloc", (void **)&alloc},
    {"llapi_layout_is_composite", (void **)&is_composite},
    {"llapi_layout_comp_use", (void **)&comp_use},
    {"llapi_layout_comp_add", (void **)&comp_add},
    {"llapi_layout_comp_extent_get", (void **)&extent_get},
    {"llapi_layout_comp_extent_set", (void **)&extent_set},
    {"llapi_layout_comp_flags_get", (void **)&flags_get},
    {"llapi_layout_comp_flags_set", (void **)&flags_set},
    {"llapi_layout_stripe_count_get", (void **)&count_get},
    {"llapi_layout_stripe_count_set", (void **)&count_set},
    {"llapi_layout_stripe_size_get", (void **)&size_get},
    {"llapi_layout_stripe_size_set", (void **)&size_set},
    {"llapi_layout_pattern_get", (void **)&pattern_get},
    {"llapi_layout_pattern_set", (void **)&pattern_set},
    {"llapi_layout_ost_index_get", (void **)&ost_get},
    {"llapi_layout_ost_index_set", (void **)&ost_set},
    {"llapi_layout_ost_index_reset", (void **)&ost_reset},
    {"llapi_layout_pool_name_get", (void **)&pool_get},
    {"llapi_layout_pool_name_set", (void **)&pool_set},
    {"llapi_layout_file_open", (void **)&file_open},
    {"llapi_layout_file_create", (void **)&file_create},
    {"llapi_path2fid", (void **)&path2fid},
    {"llapi_fd2fid", (void **)&fd2fid},
    {"llapi_fid2path", (void **)&fid2path},
};

static int passed, failed;

#define CHECK(cond) check((cond), #cond, __LINE__)
static bool check(bool ok, const char *what, int line) {
  int err = errno;
  if (ok) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "smoke.c:%d: FAILED: %s (errno %d: %s)\n", line, what, err, strerror(err));
  }
  errno = err;
  return ok;
}

static char base[1000], mnt[1024], off[1024]; /* short: leaves room below PATH_MAX */

/* base-relative path in a rotating set of buffers, so a call may use a few at once. */
static const char *P(const char *fmt, const char *name) {
  static char bufs[8][PATH_MAX];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, PATH_MAX, fmt, name);
  return b;
}
/* A path in the emulated mount, also from rotating buffers. */
static const char *M(const char *name) {
  static char bufs[8][PATH_MAX];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, PATH_MAX, "%s/%s", mnt, name);
  return b;
}

static int touch(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -1;
  ssize_t n = data != NULL ? write(fd, data, strlen(data)) : 0;
  close(fd);
  return n >= 0 ? 0 : -1;
}

/* The stored layout text of path, "" when none. */
static const char *stored(const char *path) {
  static char buf[65537];
  ssize_t n = getxattr(path, LT_XATTR, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

static uint64_t ino_of(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* The text of a FID, in buf[64]; fidstr() gives each call its own buffer (threads use it). */
#define fidstr(f, brackets) fid_text((f), (brackets), (char[64]){0})
static const char *fid_text(const struct lu_fid *f, bool brackets, char *buf) {
  snprintf(buf, 64, brackets ? "[0x%llx:0x%x:0x%x]" : "0x%llx:0x%x:0x%x", (unsigned long long)f->f_seq,
           f->f_oid, f->f_ver);
  return buf;
}

/* Reads the current component of l into c (osts: those ost_index_get answers). */
static int comp_of(const struct llapi_layout *l, struct lt_comp *c) {
  memset(c, 0, sizeof *c);
  if (extent_get(l, &c->start, &c->end) || flags_get(l, &c->flags) || count_get(l, &c->stripe_count) ||
      size_get(l, &c->stripe_size) || pattern_get(l, &c->pattern) || pool_get(l, c->pool, sizeof c->pool))
    return -1;
  for (uint64_t idx; c->n_osts < LT_MAX_STRIPES && ost_get(l, (uint64_t)c->n_osts, &idx) == 0; c->n_osts++)
    c->osts[c->n_osts] = (uint32_t)idx;
  return 0;
}

static bool consecutive(const struct lt_comp *c, uint64_t first, uint64_t count) {
  if ((uint64_t)c->n_osts != count) return false;
  for (uint64_t k = 0; k < count; k++)
    if (c->osts[k] != (first + k) % OSTS) return false;
  return true;
}

static void test_layout_text(void) {
  static struct lt_layout l;
  static char buf[8192];
  const char *good[] = {
      "plain\n0 eof 0 1048576 1 16 - 3\n",
      "plain\n0 eof 0 1048576 1 0 - -\n",
      ("composite\n0 1048576 2 1048576 0 16 - -\n1048576 67108864 0 4194304 4 16 flash 0,1,2,3\n"
       "67108864 eof 4 1048576 6 0 - -\n"),
  };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    CHECK(lt_parse(good[i], &l) == 0);
    CHECK(lt_format(&l, buf, sizeof buf) == (int)strlen(good[i]) && strcmp(buf, good[i]) == 0);
  }
  CHECK(lt_parse(good[2], &l) == 0 && l.composite && l.n_comps == 3 && l.comps[0].n_osts == 0 &&
        l.comps[1].end == 67108864 && strcmp(l.comps[1].pool, "flash") == 0 && l.comps[1].n_osts == 4 &&
        l.comps[1].osts[3] == 3 && l.comps[2].end == LT_EOF && l.comps[2].pattern == 4);
  CHECK(lt_format(&l, buf, 10) == -ERANGE);
  CHECK(lt_format(&l, buf, strlen(good[2])) == -ERANGE); /* no room for the NUL */
  const char *bad[] = {
      "",
      "plain\n",
      "striped\n0 eof 0 1048576 1 0 - -\n",
      "plain\n0 eof 0 1048576 1 0 -\n",
      "plain\n0 eof 0 1048576 1 0 - 1,,2\n",
      "plain\n0 eof 0 1048576 1 0 - 1x\n",
      "plain\n0 eof 0 1048576 1 0 - -1\n",
      "plain\n0 zz 0 1048576 1 0 - 1\n",
      "plain\n0 12ab 0 1048576 1 0 - 1\n",
      "plain\n0 eof 0 1048576 1 0 a-pool-name-of-17 1\n",
      "plain\n0 eof 0 1048576 1 0 - 1 extra\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (!CHECK(lt_parse(bad[i], &l) == -EINVAL)) fprintf(stderr, "  accepted: %s", bad[i]);
}

static void test_symbols(void *h) {
  for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++) {
    *symbols[i].slot = dlsym(h, symbols[i].name);
    if (!CHECK(*symbols[i].slot != NULL)) fprintf(stderr, "  missing %s\n", symbols[i].name);
  }
  /* The addon must cope without the changelog calls: the double leaves them out on purpose. */
  const char *absent[] = {"llapi_changelog_start", "llapi_changelog_recv", "llapi_changelog_free",
                          "llapi_changelog_fini", "llapi_changelog_clear"};
  for (size_t i = 0; i < sizeof absent / sizeof *absent; i++) CHECK(dlsym(h, absent[i]) == NULL);
}

static void test_memory_layouts(void) {
  struct lt_comp c;
  uint64_t v, s, e;
  char pool[32];
  struct llapi_layout *l = alloc();
  if (!CHECK(l != NULL)) return;
  CHECK(!is_composite(l));
  CHECK(comp_of(l, &c) == 0 && c.start == 0 && c.end == LT_EOF && c.pattern == DEFAULT &&
        c.stripe_size == DEFAULT && c.stripe_count == DEFAULT && c.flags == 0 && c.pool[0] == '\0' &&
        c.n_osts == 0);
  errno = 0;
  CHECK(ost_get(l, 0, &v) == -1 && errno == EINVAL); /* nothing instantiated */
  CHECK(comp_use(l, USE_FIRST) == 0 && comp_use(l, USE_LAST) == 0);
  errno = 0;
  CHECK(comp_use(l, USE_NEXT) == 1 && errno == ENOENT);
  CHECK(comp_use(l, USE_PREV) == 1);
  CHECK(comp_use(l, 9) == 1); /* as real for a plain layout */

  CHECK(count_set(l, 0) == -1 && errno == EINVAL);
  CHECK(count_set(l, 2001) == -1 && errno == EINVAL);
  CHECK(count_set(l, UINT64_MAX) == -1 && errno == EINVAL);
  CHECK(count_set(l, WIDE) == 0 && count_get(l, &v) == 0 && v == WIDE);
  CHECK(count_set(l, 3) == 0 && count_get(l, &v) == 0 && v == 3);
  CHECK(size_set(l, 1000) == -1 && errno == EINVAL);
  CHECK(size_set(l, 1ULL << 32) == -1 && errno == EINVAL);
  CHECK(size_set(l, 0) == -1 && errno == EINVAL);
  CHECK(size_set(l, 65536) == 0 && size_get(l, &v) == 0 && v == 65536);
  CHECK(pattern_set(l, 7) == -1 && errno == EOPNOTSUPP);
  CHECK(pattern_set(l, OVERSTRIPING) == 0 && pattern_get(l, &v) == 0 && v == OVERSTRIPING);
  CHECK(pool_set(l, "lustre.fast") == 0 && pool_get(l, pool, sizeof pool) == 0 && strcmp(pool, "fast") == 0);
  CHECK(pool_get(l, pool, 3) == 0 && strcmp(pool, "fa") == 0);
  CHECK(pool_set(l, "sixteen-chars-xx") == -1 && errno == EINVAL);
  CHECK(pool_set(l, "has space") == -1 && errno == EINVAL);
  CHECK(pool_set(l, NULL) == -1 && errno == EINVAL);
  CHECK(pool_set(l, "") == 0 && pool_get(l, pool, sizeof pool) == 0 && pool[0] == '\0');
  uint32_t flags;
  CHECK(flags_set(l, 0x20) == 0 && flags_set(l, 0x40) == 0 && flags_get(l, &flags) == 0 && flags == 0x60);
  CHECK(count_get(NULL, &v) == -1 && errno == EINVAL);
  CHECK(count_get(l, NULL) == -1 && errno == EINVAL);
  lfree(l);

  /* OST indexes: stripe 0 alone is the start; more make a specific list; counts grow to cover. */
  l = alloc();
  CHECK(ost_set(l, -1, 0) == -1 && errno == EINVAL);
  CHECK(ost_set(l, 0, 65535) == -1 && errno == EINVAL);
  CHECK(ost_set(l, 0, 1) == 0 && count_get(l, &v) == 0 && v == 1);
  CHECK(ost_get(l, 0, &v) == 0 && v == 1);
  CHECK(ost_set(l, 3, 2) == 0 && count_get(l, &v) == 0 && v == 4);
  CHECK(ost_get(l, 1, &v) == 0 && v == 0xFFFFFFFFULL); /* a slot not set */
  CHECK(ost_get(l, 3, &v) == 0 && v == 2 && ost_get(l, 4, &v) == -1 && errno == EINVAL);
  CHECK(ost_set(l, 0, DEFAULT) == 0 && ost_get(l, 0, &v) == -1);
  lfree(l);

  /* Components. */
  l = alloc();
  CHECK(comp_add(l) == -1 && errno == EINVAL); /* the first one reaches eof */
  CHECK(extent_set(l, 5, 4) == -1 && errno == EINVAL);
  CHECK(extent_set(l, 0, MiB) == 0 && is_composite(l));
  CHECK(comp_add(l) == 0 && extent_get(l, &s, &e) == 0 && s == MiB && e == LT_EOF - 1);
  CHECK(comp_of(l, &c) == 0 && c.stripe_count == DEFAULT && c.pattern == DEFAULT);
  CHECK(extent_set(l, MiB, 64 * MiB) == 0 && count_set(l, 4) == 0);
  CHECK(comp_add(l) == 0 && extent_set(l, 64 * MiB, LT_EOF) == 0 && count_set(l, WIDE) == 0);
  CHECK(comp_use(l, USE_NEXT) == 1);
  CHECK(comp_use(l, USE_PREV) == 0 && extent_get(l, &s, &e) == 0 && s == MiB && e == 64 * MiB);
  CHECK(comp_use(l, USE_FIRST) == 0 && comp_use(l, USE_PREV) == 1 && extent_get(l, &s, &e) == 0 && s == 0);
  CHECK(comp_use(l, USE_LAST) == 0 && extent_get(l, &s, &e) == 0 && s == 64 * MiB);
  CHECK(comp_use(l, 9) == -1 && errno == EINVAL);
  CHECK(ost_reset(l) == 0);
  CHECK(ost_reset(NULL) == -EINVAL);
  lfree(l);
  lfree(NULL);
}

static void test_off_mount(void) {
  const char *f = P("%s/f", off);
  struct lu_fid fid;
  char buf[PATH_MAX];
  CHECK(touch(f, "x") == 0);
  errno = 0;
  CHECK(get_by_path(f, 0) == NULL && errno == ENOTTY);
  int fd = open(f, O_RDONLY);
  CHECK(get_by_fd(fd, 0) == NULL && errno == ENOTTY);
  CHECK(fd2fid(fd, &fid) == -ENOTTY);
  close(fd);
  CHECK(path2fid(f, &fid) == -ENOTTY);
  CHECK(path2fid(P("%s/absent", off), &fid) == -ENOENT);
  CHECK(fid2path(off, "[0x200000400:0x1:0x0]", buf, sizeof buf, NULL, NULL) == -ENOTTY);
  struct llapi_layout *l = alloc();
  const char *g = P("%s/g", off);
  CHECK(file_open(g, O_CREAT | O_WRONLY, 0644, l) == -1 && errno == ENOTTY);
  CHECK(file_create(g, O_WRONLY, 0644, l) == -1 && errno == ENOTTY);
  CHECK(access(g, F_OK) != 0); /* nothing created */
  /* As the real library: with no layout, file_open is a plain open(). */
  fd = file_open(g, O_CREAT | O_WRONLY, 0644, NULL);
  CHECK(fd >= 0 && access(g, F_OK) == 0);
  if (fd >= 0) close(fd);
  lfree(l);
}

static void test_create_and_get(void) {
  struct lt_comp c;
  uint64_t v;
  char want[256];

  /* PFL: [0,1M) 1 stripe, [1M,64M) 4 stripes of 4M in pool "fast", [64M,eof) all OSTs. */
  struct llapi_layout *l = alloc();
  CHECK(extent_set(l, 0, MiB) == 0 && count_set(l, 1) == 0);
  CHECK(comp_add(l) == 0 && extent_set(l, MiB, 64 * MiB) == 0 && count_set(l, 4) == 0 && size_set(l, 4 * MiB) == 0);
  CHECK(pool_set(l, "fast") == 0 && flags_set(l, 0x40) == 0);
  CHECK(comp_add(l) == 0 && extent_set(l, 64 * MiB, LT_EOF) == 0 && count_set(l, WIDE) == 0);
  const char *pfl = M("pfl");
  int fd = file_create(pfl, O_WRONLY, 0640, l);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  uint64_t i = ino_of(pfl);
  snprintf(want, sizeof want,
           "composite\n0 1048576 0 1048576 1 16 - %llu\n1048576 67108864 0 4194304 4 80 fast %llu,%llu,%llu,%llu\n"
           "67108864 eof 0 1048576 4 16 - %llu,%llu,%llu,%llu\n",
           (unsigned long long)(i % 4), (unsigned long long)((i + 1) % 4), (unsigned long long)((i + 2) % 4),
           (unsigned long long)((i + 3) % 4), (unsigned long long)((i + 4) % 4), (unsigned long long)((i + 2) % 4),
           (unsigned long long)((i + 3) % 4), (unsigned long long)((i + 4) % 4), (unsigned long long)((i + 5) % 4));
  if (!CHECK(strcmp(stored(pfl), want) == 0)) fprintf(stderr, "  stored:\n%s  wanted:\n%s", stored(pfl), want);
  errno = 0;
  CHECK(file_create(pfl, O_WRONLY, 0640, l) == -1 && errno == EEXIST);
  CHECK(strcmp(stored(pfl), want) == 0); /* untouched */
  struct stat st;
  CHECK(stat(pfl, &st) == 0 && (st.st_mode & 0777) == 0640);
  lfree(l);

  l = get_by_path(pfl, 0);
  if (CHECK(l != NULL)) {
    CHECK(is_composite(l));
    CHECK(comp_of(l, &c) == 0 && c.start == 0 && c.end == MiB && c.stripe_count == 1 && c.flags == 0x10 &&
          consecutive(&c, i, 1));
    CHECK(comp_use(l, USE_NEXT) == 0 && comp_of(l, &c) == 0 && c.end == 64 * MiB && c.stripe_size == 4 * MiB &&
          c.flags == 0x50 && strcmp(c.pool, "fast") == 0 && consecutive(&c, i + 1, 4));
    CHECK(comp_use(l, USE_NEXT) == 0 && comp_of(l, &c) == 0 && c.end == LT_EOF && c.stripe_count == OSTS &&
          consecutive(&c, i + 2, OSTS));
    CHECK(comp_use(l, USE_NEXT) == 1);

    /* Reused for a new file after ost_index_reset: fresh OSTs from the new inode. */
    CHECK(ost_reset(l) == 0 && comp_use(l, USE_FIRST) == 0 && ost_get(l, 0, &v) == -1 && errno == EINVAL);
    CHECK(flags_get(l, &c.flags) == 0 && c.flags == 0);
    const char *copy = M("pfl-copy");
    fd = file_create(copy, O_RDWR, 0600, l);
    CHECK(fd >= 0);
    struct llapi_layout *m = fd >= 0 ? get_by_fd(fd, 0) : NULL;
    uint64_t j = ino_of(copy);
    if (CHECK(m != NULL)) {
      CHECK(comp_of(m, &c) == 0 && c.flags == 0x10 && consecutive(&c, j, 1));
      CHECK(comp_use(m, USE_LAST) == 0 && comp_of(m, &c) == 0 && consecutive(&c, j + 2, OSTS));
      lfree(m);
    }
    if (fd >= 0) close(fd);
    lfree(l);
  }

  /* A regular file made without the library: the default layout, its OST from the inode. */
  const char *plainf = M("plain");
  CHECK(touch(plainf, "data") == 0);
  l = get_by_path(plainf, 0);
  if (CHECK(l != NULL)) {
    CHECK(!is_composite(l) && comp_of(l, &c) == 0 && c.start == 0 && c.end == LT_EOF && c.pattern == RAID0 &&
          c.stripe_size == MiB && c.stripe_count == 1 && c.flags == 0 && consecutive(&c, ino_of(plainf), 1));
    lfree(l);
  }
  /* NULL layout on a mount: the default, instantiated. */
  const char *nul = M("null-layout");
  fd = file_open(nul, O_CREAT | O_WRONLY, 0644, NULL);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  snprintf(want, sizeof want, "plain\n0 eof 0 1048576 1 16 - %llu\n", (unsigned long long)(ino_of(nul) % 4));
  CHECK(strcmp(stored(nul), want) == 0);
  /* Without O_CREAT nothing is created (file_open adds no flag of its own). */
  CHECK(file_open(M("absent"), O_RDONLY, 0, NULL) == -1 && errno == ENOENT);

  /* Directories: without the xattr the all-default layout; with one, what it says. */
  const char *dir = M("dir");
  CHECK(mkdir(dir, 0755) == 0);
  l = get_by_path(dir, 0);
  if (CHECK(l != NULL)) {
    CHECK(comp_of(l, &c) == 0 && c.stripe_count == DEFAULT && c.stripe_size == DEFAULT && c.pattern == DEFAULT);
    lfree(l);
  }
  const char *dl = "plain\n0 eof 0 2097152 2 0 - -\n";
  CHECK(setxattr(dir, LT_XATTR, dl, strlen(dl), 0) == 0);
  l = get_by_path(dir, 0);
  if (CHECK(l != NULL)) {
    CHECK(comp_of(l, &c) == 0 && c.stripe_count == 2 && c.stripe_size == 2 * MiB && c.n_osts == 0);
    lfree(l);
  }
  const char *bad = M("bad");
  CHECK(touch(bad, NULL) == 0 && setxattr(bad, LT_XATTR, "garbage", 7, 0) == 0);
  errno = 0;
  CHECK(get_by_path(bad, 0) == NULL && errno == EINVAL);
  CHECK(get_by_path(M("absent"), 0) == NULL && errno == ENOENT);
  CHECK(get_by_fd(-1, 0) == NULL && errno == EBADF);

  /* Existing files: one with a layout keeps it; an empty one without gets it. */
  l = alloc();
  CHECK(count_set(l, 2) == 0);
  fd = file_open(pfl, O_RDWR | O_CREAT, 0644, l);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  CHECK(strncmp(stored(pfl), "composite\n", 10) == 0);
  const char *empty = M("empty");
  CHECK(touch(empty, NULL) == 0);
  fd = file_open(empty, O_RDWR, 0, l);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  snprintf(want, sizeof want, "plain\n0 eof 0 1048576 2 16 - %llu,%llu\n", (unsigned long long)(ino_of(empty) % 4),
           (unsigned long long)((ino_of(empty) + 1) % 4));
  CHECK(strcmp(stored(empty), want) == 0);
  fd = file_open(plainf, O_RDWR, 0, l); /* has data: keeps its (default) layout */
  CHECK(fd >= 0 && stored(plainf)[0] == '\0');
  if (fd >= 0) close(fd);

  /* Placement rules. */
  CHECK(count_set(l, OSTS + 1) == 0);
  errno = 0;
  CHECK(file_create(M("too-wide"), O_WRONLY, 0644, l) == -1 && errno == EINVAL);
  CHECK(access(M("too-wide"), F_OK) != 0);
  CHECK(pattern_set(l, OVERSTRIPING) == 0 && count_set(l, 6) == 0);
  fd = file_create(M("over"), O_WRONLY, 0644, l);
  CHECK(fd >= 0);
  if (fd >= 0) {
    struct llapi_layout *m = get_by_fd(fd, 0);
    CHECK(m != NULL && comp_of(m, &c) == 0 && c.pattern == OVERSTRIPING && consecutive(&c, ino_of(M("over")), 6));
    lfree(m);
    close(fd);
  }
  lfree(l);

  l = alloc(); /* start OST only */
  CHECK(ost_set(l, 0, 2) == 0 && count_set(l, 3) == 0);
  fd = file_create(M("start2"), O_WRONLY, 0644, l);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  CHECK(strcmp(stored(M("start2")), "plain\n0 eof 0 1048576 3 16 - 2,3,0\n") == 0);
  lfree(l);

  l = alloc(); /* a specific list */
  CHECK(count_set(l, 3) == 0 && ost_set(l, 0, 3) == 0 && ost_set(l, 1, 1) == 0 && ost_set(l, 2, 2) == 0);
  fd = file_create(M("specific"), O_WRONLY, 0644, l);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  CHECK(strcmp(stored(M("specific")), "plain\n0 eof 0 1048576 3 16 - 3,1,2\n") == 0);
  CHECK(ost_set(l, 1, 3) == 0); /* a duplicate without overstriping */
  CHECK(file_create(M("dup"), O_WRONLY, 0644, l) == -1 && errno == EINVAL && access(M("dup"), F_OK) != 0);
  CHECK(ost_set(l, 1, OSTS) == 0); /* no such OST */
  CHECK(file_create(M("no-ost"), O_WRONLY, 0644, l) == -1 && errno == EINVAL);
  lfree(l);
  l = alloc(); /* a gap in the list */
  CHECK(count_set(l, 3) == 0 && ost_set(l, 2, 1) == 0);
  CHECK(file_create(M("gap"), O_WRONLY, 0644, l) == -1 && errno == EINVAL);
  lfree(l);

  /* Data on MDT: first component only, no OSTs, reads back with the default count. */
  l = alloc();
  CHECK(extent_set(l, 0, MiB) == 0 && pattern_set(l, MDT) == 0);
  CHECK(comp_add(l) == 0 && extent_set(l, MiB, LT_EOF) == 0 && count_set(l, 2) == 0);
  fd = file_create(M("dom"), O_WRONLY, 0644, l);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  struct llapi_layout *m = get_by_path(M("dom"), 0);
  if (CHECK(m != NULL)) {
    CHECK(comp_of(m, &c) == 0 && c.pattern == MDT && c.stripe_count == DEFAULT && c.n_osts == 0 && c.flags == 0x10);
    CHECK(comp_use(m, USE_NEXT) == 0 && comp_of(m, &c) == 0 && c.stripe_count == 2 && c.n_osts == 2);
    lfree(m);
  }
  CHECK(comp_use(l, USE_FIRST) == 0 && pattern_set(l, RAID0) == 0);
  CHECK(comp_use(l, USE_LAST) == 0 && pattern_set(l, MDT) == 0);
  CHECK(file_create(M("dom2"), O_WRONLY, 0644, l) == -1 && errno == EINVAL);
  lfree(l);
  l = alloc(); /* nor may it reach eof */
  CHECK(pattern_set(l, MDT) == 0 && file_create(M("dom3"), O_WRONLY, 0644, l) == -1 && errno == EINVAL);
  lfree(l);

  /* Extents must tile the file from 0. */
  l = alloc();
  CHECK(extent_set(l, 0, MiB) == 0 && comp_add(l) == 0 && extent_set(l, 2 * MiB, LT_EOF) == 0);
  CHECK(file_create(M("hole"), O_WRONLY, 0644, l) == -1 && errno == EINVAL);
  lfree(l);
}

static void test_fids(void) {
  struct lu_fid fid, fid2;
  char buf[PATH_MAX];
  const char *f = M("fidfile");
  CHECK(touch(f, "x") == 0);
  uint64_t i = ino_of(f);
  CHECK(path2fid(f, &fid) == 0 && fid.f_seq == 0x200000400ULL + (i >> 32) && fid.f_oid == (uint32_t)i &&
        fid.f_ver == 0);
  int fd = open(f, O_RDONLY);
  CHECK(fd2fid(fd, &fid2) == 0 && memcmp(&fid, &fid2, sizeof fid) == 0);
  CHECK(fd2fid(-1, &fid2) == -EBADF);
  CHECK(path2fid(M("absent"), &fid2) == -ENOENT);
  CHECK(fid2path(mnt, fidstr(&fid, true), buf, sizeof buf, NULL, NULL) == 0 && strcmp(buf, "fidfile") == 0);
  CHECK(fid2path(mnt, fidstr(&fid, false), buf, sizeof buf, NULL, NULL) == 0 && strcmp(buf, "fidfile") == 0);
  CHECK(fid2path(M("dir"), fidstr(&fid, true), buf, sizeof buf, NULL, NULL) == 0 && strcmp(buf, "fidfile") == 0);
  CHECK(fid2path(mnt, fidstr(&fid, true), buf, 7, NULL, NULL) == -ERANGE);
  CHECK(fid2path(mnt, fidstr(&fid, true), buf, 8, NULL, NULL) == 0);
  CHECK(fid2path(mnt, "[0x200000400:0x1]", buf, sizeof buf, NULL, NULL) == -EINVAL);
  CHECK(fid2path(mnt, "nonsense", buf, sizeof buf, NULL, NULL) == -EINVAL);
  CHECK(fid2path(mnt, "[0x2000ffff0:0xfffffff0:0x0]", buf, sizeof buf, NULL, NULL) == -ENOENT);
  CHECK(fid2path("", fidstr(&fid, true), buf, sizeof buf, NULL, NULL) == -EINVAL);
  CHECK(fid2path("fsname", fidstr(&fid, true), buf, sizeof buf, NULL, NULL) == -ENOTTY);
  struct llapi_layout *l = get_by_fid(mnt, &fid, 0);
  CHECK(l != NULL);
  lfree(l);

  /* The root is "". */
  CHECK(path2fid(mnt, &fid2) == 0);
  CHECK(fid2path(mnt, fidstr(&fid2, true), buf, sizeof buf, NULL, NULL) == 0 && buf[0] == '\0');

  /* Symlinks: the FID of the link itself; layouts follow it. */
  const char *ln = M("link");
  CHECK(symlink("fidfile", ln) == 0 && path2fid(ln, &fid2) == 0 && fid2.f_oid == (uint32_t)ino_of(ln));
  l = get_by_path(ln, 0);
  CHECK(l != NULL);
  lfree(l);
  const char *out = M("out-link"); /* lies on the mount, points off it */
  CHECK(symlink(P("%s/f", off), out) == 0 && path2fid(out, &fid2) == 0);
  CHECK(get_by_path(out, 0) == NULL && errno == ENOTTY);

  /* Hard links: every name in turn, *linkno moving on until the last. */
  CHECK(mkdir(M("sub"), 0755) == 0 && link(f, M("sub/hard")) == 0);
  char a[PATH_MAX], b[PATH_MAX];
  int ln0 = 0, ln1 = 1, ln2 = 2;
  CHECK(fid2path(mnt, fidstr(&fid, true), a, sizeof a, NULL, &ln0) == 0 && ln0 == 1);
  CHECK(fid2path(mnt, fidstr(&fid, true), b, sizeof b, NULL, &ln1) == 0 && ln1 == 1);
  CHECK((strcmp(a, "fidfile") == 0 && strcmp(b, "sub/hard") == 0) ||
        (strcmp(b, "fidfile") == 0 && strcmp(a, "sub/hard") == 0));
  CHECK(fid2path(mnt, fidstr(&fid, true), b, sizeof b, NULL, &ln2) == -ENOENT);

  /* An open file unlinked: still on the mount by its fd. */
  CHECK(unlink(f) == 0 && unlink(M("sub/hard")) == 0);
  CHECK(fd2fid(fd, &fid2) == 0 && memcmp(&fid, &fid2, sizeof fid) == 0);
  l = get_by_fd(fd, 0);
  CHECK(l != NULL);
  lfree(l);
  CHECK(fid2path(mnt, fidstr(&fid, true), buf, sizeof buf, NULL, NULL) == -ENOENT);
  close(fd);
}

static void test_paths(void) {
  struct lu_fid fid;
  char buf[PATH_MAX];
  /* The mount named through a symlink, and paths through ".." still match it. */
  const char *alias = P("%s/alias", base);
  CHECK(symlink(mnt, alias) == 0);
  CHECK(setenv("LLAPI_DOUBLE_MOUNTS", alias, 1) == 0);
  const char *f = M("aliased");
  CHECK(touch(f, NULL) == 0 && path2fid(f, &fid) == 0);
  CHECK(fid2path(alias, fidstr(&fid, true), buf, sizeof buf, NULL, NULL) == 0 && strcmp(buf, "aliased") == 0);
  CHECK(path2fid(P("%s/alias/../mnt/aliased", base), &fid) == 0);
  CHECK(path2fid(P("%s/mnt/../off/f", base), &fid) == -ENOTTY);
  CHECK(setenv("LLAPI_DOUBLE_MOUNTS", "", 1) == 0 && path2fid(f, &fid) == -ENOTTY);
  CHECK(unsetenv("LLAPI_DOUBLE_MOUNTS") == 0 && path2fid(f, &fid) == -ENOTTY);
  CHECK(setenv("LLAPI_DOUBLE_MOUNTS", P("/nonexistent::%s", mnt), 1) == 0 && path2fid(f, &fid) == 0);

  /* Relative paths, trailing slashes. */
  if (CHECK(chdir(M("dir")) == 0)) {
    struct llapi_layout *l = alloc();
    int fd = file_create("relative", O_WRONLY, 0644, l);
    CHECK(fd >= 0 && strncmp(stored(M("dir/relative")), "plain\n", 6) == 0);
    if (fd >= 0) close(fd);
    CHECK(path2fid("relative", &fid) == 0 && fid.f_oid == (uint32_t)ino_of(M("dir/relative")));
    CHECK(path2fid(".", &fid) == 0 && path2fid("..", &fid) == 0 && path2fid("../..", &fid) == -ENOTTY);
    lfree(l);
    CHECK(chdir("/") == 0);
  }
  CHECK(path2fid(P("%s/dir/", mnt), &fid) == 0 && fid.f_oid == (uint32_t)ino_of(M("dir")));

  /* Near PATH_MAX: a path of ~4000 bytes works; one beyond PATH_MAX fails cleanly. */
  char deep[PATH_MAX + 8], name[101];
  memset(name, 'd', 100);
  name[100] = '\0';
  snprintf(deep, sizeof deep, "%s", mnt);
  while (strlen(deep) + 101 < PATH_MAX - 150) { /* leaves 148 to 249 bytes for the file name */
    strcat(deep, "/");
    strcat(deep, name);
    if (!CHECK(mkdir(deep, 0755) == 0)) return;
  }
  strcat(deep, "/");
  size_t rel = strlen(mnt) + 1;
  while (strlen(deep) < PATH_MAX - 2) strcat(deep, "f");
  struct llapi_layout *l = alloc();
  int fd = file_create(deep, O_WRONLY, 0644, l);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  struct llapi_layout *m = get_by_path(deep, 0);
  CHECK(m != NULL && is_composite(m) == false);
  lfree(m);
  CHECK(path2fid(deep, &fid) == 0);
  CHECK(fid2path(mnt, fidstr(&fid, true), buf, sizeof buf, NULL, NULL) == 0 && strcmp(buf, deep + rel) == 0);
  strcat(deep, "ff"); /* now PATH_MAX long: no room for its NUL */
  CHECK(file_create(deep, O_WRONLY, 0644, l) == -1 && errno == ENAMETOOLONG);
  CHECK(path2fid(deep, &fid) == -ENAMETOOLONG);
  lfree(l);
}

/* Threads creating, reading and resolving at once, as the addon's workers do. */
static atomic_int thread_failures;
static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  char path[PATH_MAX], buf[PATH_MAX], rel[64];
  struct lu_fid fid;
  struct lt_comp c;
  for (int n = 0; n < 40; n++) {
    snprintf(rel, sizeof rel, "threads/t%d-%d", id, n);
    snprintf(path, sizeof path, "%s/%s", mnt, rel);
    struct llapi_layout *l = alloc();
    bool ok = l != NULL && count_set(l, 2) == 0;
    int fd = ok ? file_create(path, O_WRONLY, 0644, l) : -1;
    struct llapi_layout *m = fd >= 0 ? get_by_fd(fd, 0) : NULL;
    ok = m != NULL && comp_of(m, &c) == 0 && c.stripe_count == 2 && c.n_osts == 2 && c.flags == 0x10;
    ok = ok && fd2fid(fd, &fid) == 0 && fid2path(mnt, fidstr(&fid, true), buf, sizeof buf, NULL, NULL) == 0 &&
         strcmp(buf, rel) == 0;
    if (!ok) atomic_fetch_add(&thread_failures, 1);
    lfree(l);
    lfree(m);
    if (fd >= 0) close(fd);
  }
  return NULL;
}

static void test_threads(void) {
  pthread_t t[8];
  CHECK(mkdir(M("threads"), 0755) == 0);
  int started = 0;
  for (; started < 8; started++)
    if (pthread_create(&t[started], NULL, worker, (void *)(intptr_t)started) != 0) break;
  CHECK(started == 8);
  for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
  CHECK(atomic_load(&thread_failures) == 0);
}

static int rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  if (remove(path) != 0) fprintf(stderr, "cleanup: %s: %s\n", path, strerror(errno));
  return 0; /* remove what can be */
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s path/to/liblustreapi.so.1\n", argv[0]);
    return 2;
  }
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(base, sizeof base, "%s/llapi-smoke-XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
  char real[PATH_MAX];
  if (mkdtemp(base) == NULL || realpath(base, real) == NULL || strlen(real) >= sizeof base) {
    perror("mkdtemp");
    return 2;
  }
  strcpy(base, real);
  snprintf(mnt, sizeof mnt, "%s/mnt", base);
  snprintf(off, sizeof off, "%s/off", base);
  if (mkdir(mnt, 0755) != 0 || mkdir(off, 0755) != 0) {
    perror("mkdir");
    return 2;
  }
  /* Empty and missing entries must be harmless. */
  setenv("LLAPI_DOUBLE_MOUNTS", P("/nonexistent::%s", mnt), 1);
  setenv("LLAPI_DOUBLE_OSTS", "4", 1);

  test_layout_text();
  test_symbols(h);
  if (failed == 0) {
    test_memory_layouts();
    test_off_mount();
    test_create_and_get();
    test_fids();
    test_paths();
    test_threads();
  }
  nftw(base, rm, 16, FTW_DEPTH | FTW_PHYS);
  dlclose(h);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
