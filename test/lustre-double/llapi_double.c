/* A test double of Lustre's liblustreapi: the llapi_* calls stripemover's addon uses, with the real
 * prototypes and return conventions, emulating Lustre on ordinary directories.
 *
 * The directories listed in LLAPI_DOUBLE_MOUNTS (colon-separated) are "Lustre mounts"; everything
 * else behaves as off Lustre (ENOTTY). Layouts are text (layout_text.h) in the xattr trusted.lov;
 * FIDs derive from inode numbers. No state lives between calls: the environment is read on each
 * call, so the library is thread-safe and tests may change it at will. See README.md.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layout_text.h"

#define API __attribute__((visibility("default")))

/* lustreapi.h constants */
#define LLAPI_LAYOUT_INVALID 0x1000000000000001ULL
#define LLAPI_LAYOUT_DEFAULT (LLAPI_LAYOUT_INVALID + 1)
#define LLAPI_LAYOUT_WIDE (LLAPI_LAYOUT_INVALID + 2)
#define LLAPI_LAYOUT_RAID0 0ULL
#define LLAPI_LAYOUT_MDT 2ULL
#define LLAPI_LAYOUT_OVERSTRIPING 4ULL
#define LLAPI_LAYOUT_IDX_MAX 0xFFFFFFFFULL /* an OST slot not set yet */
#define LLAPI_LAYOUT_COMP_USE_FIRST 1
#define LLAPI_LAYOUT_COMP_USE_LAST 2
#define LLAPI_LAYOUT_COMP_USE_NEXT 3
#define LLAPI_LAYOUT_COMP_USE_PREV 4
#define LOV_MAXPOOLNAME 15
#define LOV_MAX_STRIPE_COUNT 2000
#define LOV_MIN_STRIPE_SIZE 65536ULL
#define LOV_MAX_OST_INDEX 0xFFFEu /* LOV_V1_INSANE_STRIPE_INDEX */
#define FID_SEQ_NORMAL 0x200000400ULL

#define LAYOUT_MAGIC 0x11AD1107u /* LLAPI_LAYOUT_MAGIC: catches stale or foreign pointers */
#define DEFAULT_OSTS 8u
#define DEFAULT_STRIPE_SIZE 1048576ULL
#define XATTR_MAX 65536 /* XATTR_SIZE_MAX */

enum llapi_layout_get_flags { LLAPI_LAYOUT_GET_EXPECTED = 1, LLAPI_LAYOUT_GET_CHECK = 2, LLAPI_LAYOUT_GET_COPY = 4 };

struct lu_fid {
  uint64_t f_seq;
  uint32_t f_oid;
  uint32_t f_ver;
};

/* Opaque to callers. specific[i]: OSTs of stripes other than 0 were given (LLAPI_LAYOUT_SPECIFIC
 * in the real library): the file gets exactly that list. Otherwise an OST list only names the
 * starting OST (real Lustre uses lmm_stripe_offset = objects[0] the same way). */
struct llapi_layout {
  uint32_t magic;
  int cur;
  bool specific[LT_MAX_COMPS];
  struct lt_layout lt;
};

/* ---------------------------------------------------------------- environment and paths */

static unsigned ost_count(void) {
  const char *s = getenv("LLAPI_DOUBLE_OSTS");
  if (s == NULL || *s == '\0') return DEFAULT_OSTS;
  char *end;
  errno = 0;
  unsigned long n = strtoul(s, &end, 10);
  /* Garbage falls back to the default rather than failing every call. */
  return errno == 0 && *end == '\0' && n >= 1 && n <= LOV_MAX_OST_INDEX + 1 ? (unsigned)n : DEFAULT_OSTS;
}

/* 1 if the canonical absolute path p lies on an emulated mount (the innermost one's realpath
 * then goes to root, when not NULL), 0 if not, -1 with errno on failure. */
static int mount_of(const char *p, char *root) {
  const char *env = getenv("LLAPI_DOUBLE_MOUNTS");
  if (env == NULL || *env == '\0' || p[0] != '/') return 0;
  char *list = strdup(env);
  if (list == NULL) return -1;
  size_t best = 0;
  char m[PATH_MAX];
  char *save = NULL;
  for (char *e = strtok_r(list, ":", &save); e != NULL; e = strtok_r(NULL, ":", &save)) {
    if (realpath(e, m) == NULL) continue; /* a mount point that does not exist holds nothing */
    size_t len = strlen(m);
    bool in = len == 1 || (strncmp(p, m, len) == 0 && (p[len] == '/' || p[len] == '\0'));
    if (in && len > best) {
      best = len;
      if (root != NULL) memcpy(root, m, len + 1);
    }
  }
  free(list);
  return best > 0;
}

/* dir + "/" + name into out[PATH_MAX] (no "/" added after "/" or before ""). 0, or -1 with errno. */
static int join(char *out, const char *dir, const char *name) {
  size_t dl = strlen(dir), nl = strlen(name);
  size_t sep = nl > 0 && dl > 0 && dir[dl - 1] != '/';
  if (dl + sep + nl >= PATH_MAX) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(out, dir, dl);
  if (sep) out[dl] = '/';
  memcpy(out + dl + sep, name, nl + 1);
  return 0;
}

/* The canonical absolute form of path into out[PATH_MAX]: its realpath when follow is set and it
 * exists; otherwise the realpath of its parent plus its last name (a path not created yet, or a
 * symlink judged where it lies rather than where it points). 0, or -1 with errno. */
static int canon(const char *path, bool follow, char *out) {
  if (follow) {
    if (realpath(path, out) != NULL) return 0;
    if (errno != ENOENT) return -1;
  }
  size_t len = strlen(path);
  if (len == 0) {
    errno = ENOENT;
    return -1;
  }
  if (len >= PATH_MAX) {
    errno = ENAMETOOLONG;
    return -1;
  }
  char dir[PATH_MAX], parent[PATH_MAX];
  memcpy(dir, path, len + 1);
  while (len > 1 && dir[len - 1] == '/') dir[--len] = '\0';
  char *slash = strrchr(dir, '/');
  const char *name = slash != NULL ? slash + 1 : dir, *pdir = ".";
  if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return realpath(path, out) != NULL ? 0 : -1; /* names a directory: it must exist */
  if (slash == dir) {
    pdir = "/";
  } else if (slash != NULL) {
    *slash = '\0';
    pdir = dir;
  }
  if (realpath(pdir, parent) == NULL) return -1;
  return join(out, parent, name);
}

static int path_on_mount(const char *path, bool follow, char *root) {
  char p[PATH_MAX];
  return canon(path, follow, p) == 0 ? mount_of(p, root) : -1;
}

/* An open file's path, as the kernel names it; " (deleted)" suffixes keep the mount prefix. */
static int fd_on_mount(int fd) {
  char link[64], p[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, p, sizeof p - 1);
  if (n < 0) return -1;
  p[n] = '\0';
  return mount_of(p, NULL);
}

/* ---------------------------------------------------------------- layouts */

static struct llapi_layout *layout_new(void) {
  struct llapi_layout *l = calloc(1, sizeof *l);
  if (l == NULL) return NULL;
  l->magic = LAYOUT_MAGIC;
  l->lt.n_comps = 1;
  struct lt_comp *c = &l->lt.comps[0];
  c->start = 0;
  c->end = LT_EOF;
  c->pattern = c->stripe_size = c->stripe_count = LLAPI_LAYOUT_DEFAULT;
  return l;
}

/* The current component, or NULL with errno EINVAL for a bad layout. */
static struct lt_comp *cur(const struct llapi_layout *l) {
  if (l == NULL || l->magic != LAYOUT_MAGIC || l->cur < 0 || l->cur >= l->lt.n_comps) {
    errno = EINVAL;
    return NULL;
  }
  return (struct lt_comp *)&l->lt.comps[l->cur];
}

/* Reads the layout of the file at path (symlinks followed like open()), or if NULL open as fd. */
static struct llapi_layout *layout_get(int fd, const char *path) {
  struct stat st;
  if (path != NULL ? stat(path, &st) : fstat(fd, &st)) return NULL;
  int on = path != NULL ? path_on_mount(path, true, NULL) : fd_on_mount(fd);
  if (on <= 0) {
    if (on == 0) errno = ENOTTY;
    return NULL;
  }
  char *text = malloc(XATTR_MAX + 1);
  if (text == NULL) return NULL;
  ssize_t n = path != NULL ? getxattr(path, LT_XATTR, text, XATTR_MAX) : fgetxattr(fd, LT_XATTR, text, XATTR_MAX);
  if (n < 0 && errno != ENODATA) {
    if (errno == EOPNOTSUPP) errno = ENOTTY; /* as real: no layout xattrs means not Lustre */
    free(text);
    return NULL;
  }
  struct llapi_layout *l = layout_new();
  if (l == NULL) {
    free(text);
    return NULL;
  }
  if (n >= 0) {
    text[n] = '\0';
    int rc = lt_parse(text, &l->lt);
    free(text);
    if (rc != 0) {
      free(l);
      errno = -rc;
      return NULL;
    }
    /* Like the real library reading lov_user_md: a count or size of 0 (a DoM component) reads
     * as LLAPI_LAYOUT_DEFAULT. */
    for (int i = 0; i < l->lt.n_comps; i++) {
      struct lt_comp *c = &l->lt.comps[i];
      if (c->stripe_count == 0) c->stripe_count = LLAPI_LAYOUT_DEFAULT;
      if (c->stripe_size == 0) c->stripe_size = LLAPI_LAYOUT_DEFAULT;
    }
    return l;
  }
  free(text);
  if (S_ISREG(st.st_mode)) {
    /* On Lustre every regular file has a layout; without the xattr the file was made by other
     * means (cp, the test's fixtures): answer the file system default, its OST from the inode. */
    struct lt_comp *c = &l->lt.comps[0];
    c->pattern = LLAPI_LAYOUT_RAID0;
    c->stripe_size = DEFAULT_STRIPE_SIZE;
    c->stripe_count = 1;
    c->n_osts = 1;
    c->osts[0] = (uint32_t)(st.st_ino % ost_count());
  }
  /* Directories and others: the all-default layout, as the real library answers ENODATA. */
  return l;
}

API struct llapi_layout *llapi_layout_get_by_path(const char *path, enum llapi_layout_get_flags flags) {
  (void)flags; /* LLAPI_LAYOUT_GET_EXPECTED etc.: the double has no inheritance to expect */
  if (path == NULL) {
    errno = EINVAL;
    return NULL;
  }
  return layout_get(-1, path);
}

API struct llapi_layout *llapi_layout_get_by_fd(int fd, enum llapi_layout_get_flags flags) {
  (void)flags;
  if (fd < 0) {
    errno = EBADF;
    return NULL;
  }
  return layout_get(fd, NULL);
}

API void llapi_layout_free(struct llapi_layout *layout) { free(layout); }

API struct llapi_layout *llapi_layout_alloc(void) { return layout_new(); }

API bool llapi_layout_is_composite(struct llapi_layout *layout) {
  return cur(layout) != NULL && layout->lt.composite;
}

API int llapi_layout_comp_use(struct llapi_layout *layout, uint32_t pos) {
  if (cur(layout) == NULL) return -1;
  if (!layout->lt.composite) { /* as real: a plain layout is its only component, whatever pos asks */
    if (pos == LLAPI_LAYOUT_COMP_USE_FIRST || pos == LLAPI_LAYOUT_COMP_USE_LAST) return 0;
    errno = ENOENT;
    return 1;
  }
  int last = layout->lt.n_comps - 1, to;
  switch (pos) {
    case LLAPI_LAYOUT_COMP_USE_FIRST: to = 0; break;
    case LLAPI_LAYOUT_COMP_USE_LAST: to = last; break;
    case LLAPI_LAYOUT_COMP_USE_NEXT: to = layout->cur + 1; break;
    case LLAPI_LAYOUT_COMP_USE_PREV: to = layout->cur - 1; break;
    default: errno = EINVAL; return -1;
  }
  if (to < 0 || to > last) {
    errno = ENOENT; /* 1, not an error: no component there */
    return 1;
  }
  layout->cur = to;
  return 0;
}

API int llapi_layout_comp_extent_get(const struct llapi_layout *layout, uint64_t *start, uint64_t *end) {
  const struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  if (start == NULL || end == NULL) {
    errno = EINVAL;
    return -1;
  }
  *start = c->start;
  *end = c->end;
  return 0;
}

API int llapi_layout_comp_extent_set(struct llapi_layout *layout, uint64_t start, uint64_t end) {
  struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  if (start > end) {
    errno = EINVAL;
    return -1;
  }
  c->start = start;
  c->end = end;
  layout->lt.composite = 1; /* as real: an extent makes the layout composite */
  return 0;
}

API int llapi_layout_comp_flags_get(const struct llapi_layout *layout, uint32_t *flags) {
  const struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  if (flags == NULL) {
    errno = EINVAL;
    return -1;
  }
  *flags = c->flags;
  return 0;
}

API int llapi_layout_comp_flags_set(struct llapi_layout *layout, uint32_t flags) {
  struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  c->flags |= flags; /* as real: sets these flags, keeps the others */
  return 0;
}

static int get_u64(const struct llapi_layout *layout, size_t field, uint64_t *out) {
  const struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  if (out == NULL) {
    errno = EINVAL;
    return -1;
  }
  memcpy(out, (const char *)c + field, sizeof *out);
  return 0;
}

API int llapi_layout_stripe_count_get(const struct llapi_layout *layout, uint64_t *count) {
  return get_u64(layout, offsetof(struct lt_comp, stripe_count), count);
}

API int llapi_layout_stripe_size_get(const struct llapi_layout *layout, uint64_t *size) {
  return get_u64(layout, offsetof(struct lt_comp, stripe_size), size);
}

API int llapi_layout_pattern_get(const struct llapi_layout *layout, uint64_t *pattern) {
  return get_u64(layout, offsetof(struct lt_comp, pattern), pattern);
}

API int llapi_layout_stripe_count_set(struct llapi_layout *layout, uint64_t count) {
  struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  if (count != LLAPI_LAYOUT_DEFAULT && count != LLAPI_LAYOUT_WIDE && (count == 0 || count > LOV_MAX_STRIPE_COUNT)) {
    errno = EINVAL;
    return -1;
  }
  c->stripe_count = count;
  return 0;
}

API int llapi_layout_stripe_size_set(struct llapi_layout *layout, uint64_t size) {
  struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  if (size != LLAPI_LAYOUT_DEFAULT && (size == 0 || size % LOV_MIN_STRIPE_SIZE != 0 || size >= (1ULL << 32))) {
    errno = EINVAL;
    return -1;
  }
  c->stripe_size = size;
  return 0;
}

API int llapi_layout_pattern_set(struct llapi_layout *layout, uint64_t pattern) {
  struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  if (pattern != LLAPI_LAYOUT_DEFAULT && pattern != LLAPI_LAYOUT_RAID0 && pattern != LLAPI_LAYOUT_MDT &&
      pattern != LLAPI_LAYOUT_OVERSTRIPING) {
    errno = EOPNOTSUPP; /* the real library's errno for a pattern it does not know */
    return -1;
  }
  c->pattern = pattern;
  return 0;
}

/* The real prototype takes a uint64_t stripe number here (but an int in _set). */
API int llapi_layout_ost_index_get(const struct llapi_layout *layout, uint64_t stripe_number, uint64_t *index) {
  const struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  /* Like real: within both the stripe count and the OSTs known (none before instantiation). */
  if (index == NULL || stripe_number >= (uint64_t)c->n_osts ||
      (c->stripe_count < LLAPI_LAYOUT_INVALID && stripe_number >= c->stripe_count)) {
    errno = EINVAL;
    return -1;
  }
  *index = c->osts[stripe_number]; /* a slot never set reads LLAPI_LAYOUT_IDX_MAX */
  return 0;
}

API int llapi_layout_ost_index_set(struct llapi_layout *layout, int stripe_number, uint64_t index) {
  struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  if (stripe_number == 0 && index == LLAPI_LAYOUT_DEFAULT) { /* "no OST wanted": forget them */
    c->n_osts = 0;
    layout->specific[layout->cur] = false;
    return 0;
  }
  if (stripe_number < 0 || stripe_number >= LT_MAX_STRIPES || index > LOV_MAX_OST_INDEX) {
    errno = EINVAL;
    return -1;
  }
  while (c->n_osts <= stripe_number) c->osts[c->n_osts++] = (uint32_t)LLAPI_LAYOUT_IDX_MAX;
  c->osts[stripe_number] = (uint32_t)index;
  if (stripe_number > 0) layout->specific[layout->cur] = true;
  /* As real: the count grows to cover the stripes named. */
  if (c->stripe_count == LLAPI_LAYOUT_DEFAULT || c->stripe_count <= (uint64_t)stripe_number)
    c->stripe_count = (uint64_t)stripe_number + 1;
  return 0;
}

API int llapi_layout_pool_name_get(const struct llapi_layout *layout, char *dest, size_t n) {
  const struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  if (dest == NULL) {
    errno = EINVAL;
    return -1;
  }
  snprintf(dest, n, "%s", c->pool); /* as real: truncates to fit */
  return 0;
}

API int llapi_layout_pool_name_set(struct llapi_layout *layout, const char *pool) {
  struct lt_comp *c = cur(layout);
  if (c == NULL) return -1;
  if (pool == NULL) {
    errno = EINVAL;
    return -1;
  }
  const char *dot = strchr(pool, '.');
  if (dot != NULL) pool = dot + 1; /* as real: "fsname.pool" names the pool */
  bool ok = strlen(pool) <= LOV_MAXPOOLNAME && strcmp(pool, "-") != 0;
  for (const char *s = pool; ok && *s != '\0'; s++) ok = isgraph((unsigned char)*s); /* the text format's limit */
  if (!ok) {
    errno = EINVAL;
    return -1;
  }
  strcpy(c->pool, pool);
  return 0;
}

API int llapi_layout_comp_add(struct llapi_layout *layout) {
  if (cur(layout) == NULL) return -1;
  struct lt_layout *lt = &layout->lt;
  uint64_t start = lt->comps[lt->n_comps - 1].end;
  if (lt->n_comps == LT_MAX_COMPS || start == LT_EOF) { /* real: nothing can follow an extent to eof */
    errno = EINVAL;
    return -1;
  }
  struct lt_comp *c = &lt->comps[lt->n_comps];
  memset(c, 0, sizeof *c);
  c->start = start;
  c->end = LT_EOF - 1; /* the real library's placeholder until the caller sets the extent */
  c->pattern = c->stripe_size = c->stripe_count = LLAPI_LAYOUT_DEFAULT;
  layout->specific[lt->n_comps] = false;
  layout->cur = lt->n_comps++;
  lt->composite = 1;
  return 0;
}

API int llapi_layout_ost_index_reset(struct llapi_layout *layout) {
  if (cur(layout) == NULL) return -errno; /* real returns -errno here */
  for (int i = 0; i < layout->lt.n_comps; i++) {
    layout->lt.comps[i].n_osts = 0;
    layout->lt.comps[i].flags &= ~LT_FL_INIT;
    layout->specific[i] = false;
  }
  return 0;
}

/* Fills out with the layout a new file gets from l (NULL: the default), the OSTs not given
 * derived from ino. 0, or -1 with errno EINVAL where Lustre would refuse the layout. */
static int instantiate(const struct llapi_layout *l, uint64_t ino, struct lt_layout *out) {
  static const struct lt_comp plain = {
      .end = LT_EOF, .pattern = LLAPI_LAYOUT_DEFAULT, .stripe_size = LLAPI_LAYOUT_DEFAULT,
      .stripe_count = LLAPI_LAYOUT_DEFAULT};
  const unsigned osts = ost_count();
  if (l != NULL) {
    *out = l->lt;
  } else {
    memset(out, 0, sizeof *out);
    out->n_comps = 1;
    out->comps[0] = plain;
  }
  for (int i = 0; i < out->n_comps; i++) {
    struct lt_comp *c = &out->comps[i];
    bool specific = l != NULL && l->specific[i];
    /* Components tile the file from 0 without gaps (real: llapi_layout_sanity). */
    if (c->start != (i > 0 ? out->comps[i - 1].end : 0) || c->start >= c->end) goto invalid;
    if (c->pattern == LLAPI_LAYOUT_DEFAULT) c->pattern = LLAPI_LAYOUT_RAID0;
    if (c->stripe_size == LLAPI_LAYOUT_DEFAULT) c->stripe_size = DEFAULT_STRIPE_SIZE;
    c->flags |= LT_FL_INIT; /* every component at once: see README (real: PFL ones on first write) */
    if (c->pattern == LLAPI_LAYOUT_MDT) {
      if (i != 0 || c->end == LT_EOF) goto invalid; /* data on MDT: a first component, bounded */
      c->stripe_count = 0; /* as lmm_stripe_count of a DoM component */
      c->n_osts = 0;
      continue;
    }
    if (c->pattern != LLAPI_LAYOUT_RAID0 && c->pattern != LLAPI_LAYOUT_OVERSTRIPING) goto invalid;
    bool over = c->pattern == LLAPI_LAYOUT_OVERSTRIPING;
    uint64_t count = c->stripe_count;
    if (count == LLAPI_LAYOUT_DEFAULT) count = specific ? (uint64_t)c->n_osts : 1;
    if (count == LLAPI_LAYOUT_WIDE || count == UINT64_MAX) count = osts;
    if (count == 0 || count > LT_MAX_STRIPES || (count > osts && !over)) goto invalid;
    if (specific) {
      if ((uint64_t)c->n_osts < count) goto invalid; /* every stripe's OST must be named */
      for (uint64_t k = 0; k < count; k++) {
        if (c->osts[k] >= osts) goto invalid;
        for (uint64_t j = 0; j < k && !over; j++)
          if (c->osts[j] == c->osts[k]) goto invalid;
      }
    } else {
      uint64_t first = c->n_osts > 0 ? c->osts[0] : (ino + (uint64_t)i) % osts;
      if (first >= osts) goto invalid;
      for (uint64_t k = 0; k < count; k++) c->osts[k] = (uint32_t)((first + k) % osts);
    }
    c->n_osts = (int)count;
    c->stripe_count = count;
  }
  return 0;
invalid:
  errno = EINVAL;
  return -1;
}

API int llapi_layout_file_open(const char *path, int open_flags, mode_t mode, const struct llapi_layout *layout) {
  if (path == NULL || (layout != NULL && cur(layout) == NULL)) {
    errno = EINVAL;
    return -1;
  }
  int on = path_on_mount(path, true, NULL);
  if (on <= 0) {
    if (layout == NULL) return open(path, open_flags, mode); /* as real: a plain open() */
    if (on == 0) errno = ENOTTY;
    return -1;
  }
  struct lt_layout *lt = malloc(sizeof *lt);
  char *text = malloc(XATTR_MAX);
  int fd = -1, err = 0;
  bool created = false;
  if (lt == NULL || text == NULL) goto fail;
  /* Validate before creating anything, so a refused layout leaves no file behind. */
  if (instantiate(layout, 0, lt) != 0) goto fail;
  if (open_flags & O_CREAT) {
    /* O_EXCL first, to know whether this call created the file (and must remove it on failure). */
    fd = open(path, open_flags | O_EXCL, mode);
    created = fd >= 0;
    if (fd < 0 && errno == EEXIST && !(open_flags & O_EXCL)) fd = open(path, open_flags, mode);
  } else {
    fd = open(path, open_flags, mode);
  }
  if (fd < 0) goto fail;
  struct stat st;
  if (fstat(fd, &st) != 0) goto fail;
  if ((on = fd_on_mount(fd)) <= 0) { /* e.g. a dangling symlink pointing off the mount */
    if (on == 0) errno = ENOTTY;
    goto fail;
  }
  bool instantiated = !S_ISREG(st.st_mode);
  if (!created && !instantiated) {
    /* An existing file keeps its layout; an empty one without any gets it now, as on Lustre a
     * file created with O_LOV_DELAY_CREATE does when first opened this way. */
    instantiated = st.st_size > 0 || fgetxattr(fd, LT_XATTR, NULL, 0) >= 0;
    if (!instantiated && errno != ENODATA) goto fail;
  }
  if (!instantiated) {
    int len;
    if (instantiate(layout, (uint64_t)st.st_ino, lt) != 0) goto fail;
    if ((len = lt_format(lt, text, XATTR_MAX)) < 0) {
      errno = -len;
      goto fail;
    }
    /* XATTR_CREATE for a file someone else may be instantiating at the same time: first wins. */
    if (fsetxattr(fd, LT_XATTR, text, (size_t)len, created ? 0 : XATTR_CREATE) != 0 && errno != EEXIST) goto fail;
  }
  free(lt);
  free(text);
  return fd;
fail:
  err = errno == EOPNOTSUPP ? ENOTTY : errno; /* as real: no layout xattr means not Lustre */
  if (fd >= 0) close(fd);
  if (created) unlink(path);
  free(lt);
  free(text);
  errno = err;
  return -1;
}

/* The real prototype has int mode here (mode_t in _open). */
API int llapi_layout_file_create(const char *path, int open_flags, int mode, const struct llapi_layout *layout) {
  return llapi_layout_file_open(path, open_flags | O_CREAT | O_EXCL, (mode_t)mode, layout);
}

/* ---------------------------------------------------------------- FIDs */

static void fid_of(const struct stat *st, struct lu_fid *fid) {
  uint64_t ino = (uint64_t)st->st_ino;
  fid->f_seq = FID_SEQ_NORMAL + (ino >> 32);
  fid->f_oid = (uint32_t)ino;
  fid->f_ver = 0;
}

API int llapi_path2fid(const char *path, struct lu_fid *fid) {
  if (path == NULL || fid == NULL) return -EINVAL;
  memset(fid, 0, sizeof *fid);
  struct stat st;
  if (lstat(path, &st) != 0) return -errno; /* the FID of a symlink itself, as real */
  int on = path_on_mount(path, false, NULL);
  if (on <= 0) return on == 0 ? -ENOTTY : -errno;
  fid_of(&st, fid);
  return 0;
}

API int llapi_fd2fid(int fd, struct lu_fid *fid) {
  if (fid == NULL) return -EINVAL;
  memset(fid, 0, sizeof *fid);
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  int on = fd_on_mount(fd);
  if (on <= 0) return on == 0 ? -ENOTTY : -errno;
  fid_of(&st, fid);
  return 0;
}

/* The real llapi_fid_parse: optional blanks and '[', three numbers (any base strtoull reads)
 * separated by ':', an optional ']'; what follows is ignored. 0, -EINVAL or -ERANGE. */
static int parse_fid(const char *s, struct lu_fid *fid) {
  unsigned long long v[3];
  if (s == NULL) return -EINVAL;
  while (isspace((unsigned char)*s)) s++;
  while (*s == '[') s++;
  for (int i = 0; i < 3; i++) {
    char *end;
    if (!isdigit((unsigned char)*s)) return -EINVAL;
    errno = 0;
    v[i] = strtoull(s, &end, 0);
    if (errno == ERANGE || (i > 0 && v[i] > UINT32_MAX)) return -ERANGE;
    if (i < 2 && *end != ':') return -EINVAL;
    s = end + 1;
  }
  fid->f_seq = v[0];
  fid->f_oid = (uint32_t)v[1];
  fid->f_ver = (uint32_t)v[2];
  return 0;
}

/* A search of the tree below a mount for the names of one inode, in readdir order. */
struct walk {
  dev_t dev;
  ino_t ino;
  int want;              /* which name (0-based) to answer */
  bool ask_more;         /* whether to look for a name after it (else stop at it) */
  int found;             /* names met so far */
  bool more;             /* a name after the wanted one exists */
  char rel[PATH_MAX];    /* the path being visited, relative to the mount */
  char answer[PATH_MAX]; /* the wanted name */
};

/* Visits the tree of the directory open as dfd, whose relative path is w->rel[0..len).
 * 1 when the search is over, 0 to go on, -errno on failure. Consumes dfd. */
static int walk_dir(struct walk *w, int dfd, size_t len) {
  DIR *d = fdopendir(dfd);
  if (d == NULL) {
    int rc = -errno;
    close(dfd);
    return rc;
  }
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (e == NULL) {
      rc = errno != 0 ? -errno : 0;
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    size_t nlen = strlen(e->d_name), sub = len + (len > 0) + nlen;
    if (sub >= PATH_MAX) continue; /* a name no path within PATH_MAX can reach */
    snprintf(w->rel + len, PATH_MAX - len, "%s%s", len > 0 ? "/" : "", e->d_name);
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != w->dev)
      continue; /* removed meanwhile, or another file system mounted below */
    if (st.st_ino == w->ino) {
      if (w->found > w->want) {
        w->more = true;
        rc = 1;
        break;
      }
      if (w->found == w->want) memcpy(w->answer, w->rel, sub + 1);
      w->found++;
      /* Link counts are not trusted to end the search early: high-level FUSE file systems
       * cache them per name, so they go stale when links come and go. */
      if (w->found > w->want && (S_ISDIR(st.st_mode) || !w->ask_more)) {
        rc = 1;
        break;
      }
    }
    if (S_ISDIR(st.st_mode)) {
      int sfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sfd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
          rc = -errno;
          break;
        }
        continue; /* unreadable or gone: like find, go on without it */
      }
      if ((rc = walk_dir(w, sfd, sub)) != 0) break;
    }
  }
  closedir(d);
  return rc;
}

/* Finds the want-th name of the inode of fid below the mount root; its relative path goes to
 * w->answer. 0, or -errno. */
static int fid_lookup(const char *root, const struct lu_fid *fid, struct walk *w) {
  if (fid->f_seq < FID_SEQ_NORMAL || fid->f_seq - FID_SEQ_NORMAL > UINT32_MAX || fid->f_ver != 0) return -ENOENT;
  struct stat st;
  if (lstat(root, &st) != 0) return -errno;
  w->dev = st.st_dev;
  w->ino = (ino_t)(((fid->f_seq - FID_SEQ_NORMAL) << 32) | fid->f_oid);
  w->found = 0;
  w->more = false;
  w->rel[0] = w->answer[0] = '\0';
  if (st.st_ino == w->ino) { /* the root: one name, "" */
    w->found = 1;
    return w->want == 0 ? 0 : -ENOENT;
  }
  int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  int rc = walk_dir(w, dfd, 0);
  if (rc < 0) return rc;
  return w->found > w->want ? 0 : -ENOENT;
}

/* The mount root for a path_or_device argument: any path on a mount (as real); fsnames are
 * not emulated. 0, or -errno. */
static int mount_root(const char *mnt, char *root) {
  if (mnt == NULL || *mnt == '\0') return -EINVAL;
  if (mnt[0] != '/') return -ENOTTY;
  int on = path_on_mount(mnt, true, root);
  return on > 0 ? 0 : on == 0 ? -ENOTTY : -errno;
}

API int llapi_fid2path(const char *path_or_device, const char *fidstr, char *path, int pathlen, long long *recno,
                       int *linkno) {
  (void)recno; /* changelog record numbers: there is no changelog to relate to */
  struct lu_fid fid;
  char root[PATH_MAX];
  int rc = parse_fid(fidstr, &fid);
  if (rc == 0) rc = mount_root(path_or_device, root);
  if (rc != 0) return rc;
  if (path == NULL || pathlen < 1 || (linkno != NULL && *linkno < 0)) return -EINVAL;
  struct walk *w = malloc(sizeof *w);
  if (w == NULL) return -ENOMEM;
  w->want = linkno != NULL ? *linkno : 0;
  w->ask_more = linkno != NULL;
  rc = fid_lookup(root, &fid, w);
  if (rc == 0 && strlen(w->answer) >= (size_t)pathlen) rc = -ERANGE;
  if (rc == 0) {
    strcpy(path, w->answer);
    if (linkno != NULL && w->more) *linkno = w->want + 1; /* unchanged after the last name */
  }
  free(w);
  return rc;
}

API struct llapi_layout *llapi_layout_get_by_fid(const char *lustre_dir, const struct lu_fid *fid,
                                                 enum llapi_layout_get_flags flags) {
  char root[PATH_MAX];
  int rc = fid == NULL ? -EINVAL : mount_root(lustre_dir, root);
  struct walk *w = rc == 0 ? malloc(sizeof *w) : NULL;
  if (rc == 0 && w == NULL) rc = -ENOMEM;
  if (rc == 0) {
    w->want = 0;
    w->ask_more = false;
    rc = fid_lookup(root, fid, w);
  }
  if (rc == 0 && join(w->rel, root, w->answer) != 0) rc = -errno; /* w->rel reused for the full path */
  struct llapi_layout *l = rc == 0 ? llapi_layout_get_by_path(w->rel, flags) : NULL;
  int err = errno;
  free(w);
  errno = rc != 0 ? -rc : err;
  return l;
}
