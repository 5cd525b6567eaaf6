/* ostfs: a FUSE file system that emulates the data placement of a Lustre file system on one
 * machine, for benchmarks of per-OST scheduling. Test code only; see README.md.
 *
 *   ostfs [--osts N] [--ost-bw B] [--ost-concurrency C] [--mdt-bw B]
 *         [--default-stripe-count K] [--default-stripe-size S] [fuse options] BACKING MOUNTPOINT
 *
 * BACKING/mdt        the namespace: directories, symlinks, special files, hard links, and for each
 *                    regular file a placeholder that holds its metadata and logical size, no data
 * BACKING/ost<K>     objects <placeholder inode>.<component>.<stripe> of the files' RAID0 and
 *                    overstriped components placed on OST K
 * BACKING/mdt-data   objects <placeholder inode>.<component> of data-on-MDT components
 *
 * The layout of a regular file is the text of ../lustre-double/layout_text.h, stored on the
 * placeholder in the hidden xattr user.ostfs.lov and shown as trusted.lov.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 314

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "layout_text.h"

#define HIDDEN_PREFIX "user.ostfs."
#define LAYOUT_XATTR "user.ostfs.lov"
#define STATS_XATTR "user.ostfs.stats"
#define REQS_XATTR "user.ostfs.requests"
#define CONFIG_XATTR "user.ostfs.config"
#define LT_TEXT_MAX 32768
#define PAT_RAID0 0
#define PAT_MDT 2
#define PAT_OVERSTRIPING 4
#define MIN_THREADS 64
#define NBUCKETS 1024

/* ------------------------------------------------------------------------------------------ */
/* Emulated servers: N OSTs and one MDT, each with C slots and a bandwidth.                     */

struct target {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t bw; /* bytes per second for the whole server, 0 = unlimited */
  unsigned conc;
  unsigned in_use;
  uint64_t head, tail; /* FIFO tickets: requests are admitted in arrival order */
  uint64_t read_bytes, write_bytes, busy_ns, busy_since, max_queue;
  int last_fd; /* where the previous request ended: the next one there needs no seek */
  uint64_t last_end;
};

static struct {
  char *backing;
  int mdt_fd, mdtdata_fd;
  int *ost_fd;
  unsigned n_osts;
  uint64_t ost_bw, mdt_bw;
  int mdt_bw_set;
  unsigned conc;
  uint64_t seek_ns; /* --ost-seek-us: charged when a request does not continue the previous one */
  uint64_t def_count, def_size;
  struct target *tg; /* [0, n_osts) the OSTs, [n_osts] the MDT */
  int is_root;
  pthread_mutex_t ns_mu; /* link, unlink, rename: the nlink check and the action are atomic */
  uint64_t rd_reqs, wr_reqs, rd_max, wr_max, rd_bytes, wr_bytes;
  int no_parallel_writes;  /* --no-parallel-writes */
  int own_mount;           /* mounted by us, with the /dev/fuse hooks below */
  uint64_t parallel_opens; /* OPEN/CREATE replies given FOPEN_PARALLEL_DIRECT_WRITES */
} G = {.mdt_fd = -1, .mdtdata_fd = -1, .n_osts = 8, .conc = 1, .def_count = 1, .def_size = 1048576};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t) {
  struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull), .tv_nsec = (long)(t % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

/* Takes one of the target's slots, in arrival order; returns the time it was taken. */
static uint64_t tg_acquire(struct target *t) {
  pthread_mutex_lock(&t->mu);
  uint64_t me = t->tail++;
  uint64_t depth = (t->tail - t->head) + t->in_use; /* waiting (with this one) + in service */
  if (depth > t->max_queue) t->max_queue = depth;
  while (me != t->head || t->in_use >= t->conc) pthread_cond_wait(&t->cv, &t->mu);
  t->head++;
  uint64_t now = now_ns();
  if (t->in_use++ == 0) t->busy_since = now;
  pthread_cond_broadcast(&t->cv); /* the next in line may take another free slot */
  pthread_mutex_unlock(&t->mu);
  return now;
}

/* The seek time of a request at (fd, off): none when it continues the target's previous request,
 * as a disk head already there; otherwise --ost-seek-us. Call with the slot held. */
static uint64_t tg_seek(struct target *t, int fd, uint64_t off, uint64_t len) {
  pthread_mutex_lock(&t->mu);
  uint64_t ns = fd == t->last_fd && off == t->last_end ? 0 : G.seek_ns;
  t->last_fd = fd;
  t->last_end = off + len;
  pthread_mutex_unlock(&t->mu);
  return ns;
}

/* Holds the slot until len bytes took at least len * C / BW seconds since t0, then frees it. */
static void tg_release(struct target *t, uint64_t t0, uint64_t len, int write) {
  if (t->bw > 0 && len > 0) sleep_until(t0 + (uint64_t)((double)len * t->conc * 1e9 / (double)t->bw));
  pthread_mutex_lock(&t->mu);
  if (write)
    t->write_bytes += len;
  else
    t->read_bytes += len;
  if (--t->in_use == 0) t->busy_ns += now_ns() - t->busy_since;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

static void atomic_max(uint64_t *p, uint64_t v) {
  uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v > cur && !__atomic_compare_exchange_n(p, &cur, v, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Paths                                                                                        */

static const char *rel(const char *path) {
  while (*path == '/') path++;
  return *path ? path : ".";
}

/* A path for the l*xattr calls (there are no *at variants): through the mdt directory's fd. */
static int xpath(char *buf, size_t n, const char *r) {
  if ((size_t)snprintf(buf, n, "/proc/self/fd/%d/%s", G.mdt_fd, r) >= n) return -ENAMETOOLONG;
  return 0;
}

static void obj_name(char *buf, size_t n, ino_t ino, int c, int s, int dom) {
  if (dom)
    snprintf(buf, n, "%llu.%d", (unsigned long long)ino, c);
  else
    snprintf(buf, n, "%llu.%d.%d", (unsigned long long)ino, c, s);
}

/* The directory of object s of component c, or -1 when its OST does not exist. */
static int obj_dir(const struct lt_comp *c, int s) {
  if (c->pattern == PAT_MDT) return G.mdtdata_fd;
  if (c->osts[s] >= G.n_osts) return -1;
  return G.ost_fd[c->osts[s]];
}

static int comp_objects(const struct lt_comp *c) {
  if (c->pattern == PAT_MDT) return (c->flags & LT_FL_INIT) ? 1 : 0;
  return c->n_osts;
}

/* Removes the objects of a layout (missing ones are fine). */
static void unlink_objects(ino_t ino, const struct lt_layout *l) {
  char name[64];
  for (int c = 0; c < l->n_comps; c++) {
    const struct lt_comp *cp = &l->comps[c];
    int n = cp->pattern == PAT_MDT ? 1 : cp->n_osts; /* DoM: whether instantiated or not */
    for (int s = 0; s < n; s++) {
      int dfd = obj_dir(cp, s);
      if (dfd < 0) continue;
      obj_name(name, sizeof name, ino, c, s, cp->pattern == PAT_MDT);
      if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
        fprintf(stderr, "ostfs: unlink object %s: %s\n", name, strerror(errno));
    }
  }
}

/* Reads the stored layout of a placeholder by path: 1 with *l filled, 0 when none, -errno. */
static int read_layout_path(const char *r, struct lt_layout *l) {
  char p[PATH_MAX + 64], text[LT_TEXT_MAX];
  int rc = xpath(p, sizeof p, r);
  if (rc) return rc;
  ssize_t n = lgetxattr(p, LAYOUT_XATTR, text, sizeof text - 1);
  if (n < 0) return errno == ENODATA ? 0 : -errno;
  text[n] = '\0';
  return lt_parse(text, l) == 0 ? 1 : -EIO;
}

/* ------------------------------------------------------------------------------------------ */
/* Per-inode state of regular files: shared by all handles and paths of one placeholder inode.  */

struct istate {
  struct istate *next;
  ino_t ino;
  int refs;            /* under tbl_mu */
  int pfd, pfd_rw;     /* the placeholder, opened read-write when possible */
  pthread_rwlock_t rw; /* I/O shared; truncate, layout change, object removal exclusive */
  pthread_mutex_t mu;  /* the layout, its instantiation and the object fds */
  int loaded, has;     /* layout read from the placeholder; the file has one */
  struct lt_layout lay;
  int *fds[LT_MAX_COMPS]; /* per component, per stripe: object fd or -1 */
};

static struct istate *tbl[NBUCKETS];
static pthread_mutex_t tbl_mu = PTHREAD_MUTEX_INITIALIZER;

static void close_objects(struct istate *st) {
  for (int c = 0; c < LT_MAX_COMPS; c++) {
    if (!st->fds[c]) continue;
    for (int s = 0; s < LT_MAX_STRIPES; s++)
      if (st->fds[c][s] >= 0) close(st->fds[c][s]);
    free(st->fds[c]);
    st->fds[c] = NULL;
  }
}

/* The state of an inode if some handle or operation holds it (reference taken), else NULL. */
static struct istate *state_find(ino_t ino) {
  pthread_mutex_lock(&tbl_mu);
  struct istate *st = tbl[ino % NBUCKETS];
  while (st && st->ino != ino) st = st->next;
  if (st) st->refs++;
  pthread_mutex_unlock(&tbl_mu);
  return st;
}

/* Takes ownership of fd (a placeholder): the state of its inode, with a reference. */
static int state_from_fd(int fd, int rw, struct istate **out) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL;
  }
  pthread_mutex_lock(&tbl_mu);
  struct istate **b = &tbl[sb.st_ino % NBUCKETS], *st = *b;
  while (st && st->ino != sb.st_ino) st = st->next;
  if (st) { /* the state keeps its own fd: others may be using it right now */
    st->refs++;
    pthread_mutex_unlock(&tbl_mu);
    close(fd);
    *out = st;
    return 0;
  }
  st = calloc(1, sizeof *st);
  if (!st) {
    pthread_mutex_unlock(&tbl_mu);
    close(fd);
    return -ENOMEM;
  }
  st->ino = sb.st_ino;
  st->refs = 1;
  st->pfd = fd;
  st->pfd_rw = rw;
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&st->rw, &ra);
  pthread_rwlockattr_destroy(&ra);
  pthread_mutex_init(&st->mu, NULL);
  st->next = *b;
  *b = st;
  pthread_mutex_unlock(&tbl_mu);
  *out = st;
  return 0;
}

/* Opens the placeholder of a regular file by path. */
static int state_open_path(const char *r, struct istate **out) {
  struct stat sb;
  if (fstatat(G.mdt_fd, r, &sb, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  if (S_ISDIR(sb.st_mode)) return -EISDIR;
  if (!S_ISREG(sb.st_mode)) return -EINVAL; /* never open devices or FIFOs of the backing */
  int rw = 1, fd = openat(G.mdt_fd, r, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS || errno == ETXTBSY)) {
    rw = 0;
    fd = openat(G.mdt_fd, r, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  }
  if (fd < 0) return -errno;
  return state_from_fd(fd, rw, out);
}

static void state_put(struct istate *st) {
  pthread_mutex_lock(&tbl_mu);
  if (--st->refs > 0) {
    pthread_mutex_unlock(&tbl_mu);
    return;
  }
  struct istate **p = &tbl[st->ino % NBUCKETS];
  while (*p != st) p = &(*p)->next;
  *p = st->next;
  pthread_mutex_unlock(&tbl_mu);
  close_objects(st);
  close(st->pfd);
  pthread_rwlock_destroy(&st->rw);
  pthread_mutex_destroy(&st->mu);
  free(st);
}

/* Under st->mu. */
static int st_load(struct istate *st) {
  if (st->loaded) return 0;
  char text[LT_TEXT_MAX];
  ssize_t n = fgetxattr(st->pfd, LAYOUT_XATTR, text, sizeof text - 1);
  if (n < 0) {
    if (errno != ENODATA) return -errno;
    st->has = 0;
  } else {
    text[n] = '\0';
    if (lt_parse(text, &st->lay) != 0) {
      fprintf(stderr, "ostfs: inode %llu: unreadable layout\n", (unsigned long long)st->ino);
      return -EIO;
    }
    st->has = 1;
  }
  st->loaded = 1;
  return 0;
}

/* Under st->mu. */
static int st_store(struct istate *st) {
  char text[LT_TEXT_MAX];
  int n = lt_format(&st->lay, text, sizeof text);
  if (n < 0) return n;
  if (fsetxattr(st->pfd, LAYOUT_XATTR, text, (size_t)n, 0) != 0) {
    int e = errno;
    fprintf(stderr, "ostfs: inode %llu: storing the layout: %s\n", (unsigned long long)st->ino, strerror(e));
    return -e;
  }
  return 0;
}

static int pf_truncate(struct istate *st, off_t size) {
  if (st->pfd_rw) return ftruncate(st->pfd, size) == 0 ? 0 : -errno;
  char p[64];
  snprintf(p, sizeof p, "/proc/self/fd/%d", st->pfd);
  return truncate(p, size) == 0 ? 0 : -errno;
}

/* Under st->mu: the fd of object s of component c; -ENOENT when it does not exist and !create. */
static int obj_fd(struct istate *st, int c, int s, int create) {
  if (!st->fds[c]) {
    st->fds[c] = malloc(LT_MAX_STRIPES * sizeof(int));
    if (!st->fds[c]) return -ENOMEM;
    for (int i = 0; i < LT_MAX_STRIPES; i++) st->fds[c][i] = -1;
  }
  if (st->fds[c][s] >= 0) return st->fds[c][s];
  const struct lt_comp *cp = &st->lay.comps[c];
  int dfd = obj_dir(cp, s);
  if (dfd < 0) return -EIO;
  char name[64];
  obj_name(name, sizeof name, st->ino, c, s, cp->pattern == PAT_MDT);
  int fd = openat(dfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
  if (fd < 0) return -errno;
  st->fds[c][s] = fd;
  return fd;
}

/* Under st->mu: give component c its OSTs (or mark DoM instantiated), remove stale objects of
 * the same names (left by an earlier inode of the same number), store the layout. */
static int instantiate(struct istate *st, int c) {
  struct lt_comp *cp = &st->lay.comps[c];
  struct lt_comp saved = *cp;
  if (cp->pattern != PAT_MDT) {
    uint64_t base = st->ino;
    for (int i = 0; i < c; i++)
      if (st->lay.comps[i].pattern != PAT_MDT) base += st->lay.comps[i].stripe_count;
    for (uint64_t s = 0; s < cp->stripe_count; s++) cp->osts[s] = (uint32_t)((base + s) % G.n_osts);
    cp->n_osts = (int)cp->stripe_count;
  }
  cp->flags |= LT_FL_INIT;
  char name[64];
  for (int s = 0; s < comp_objects(cp); s++) {
    obj_name(name, sizeof name, st->ino, c, s, cp->pattern == PAT_MDT);
    if (unlinkat(obj_dir(cp, s), name, 0) != 0 && errno != ENOENT) {
      int e = errno;
      *cp = saved;
      return -e;
    }
  }
  int rc = st_store(st);
  if (rc) *cp = saved;
  return rc;
}

/* Under st->mu: a plain layout of the default stripe count and size. */
static int default_layout(struct istate *st) {
  memset(&st->lay, 0, sizeof st->lay);
  st->lay.n_comps = 1;
  struct lt_comp *c = &st->lay.comps[0];
  c->start = 0;
  c->end = LT_EOF;
  c->pattern = PAT_RAID0;
  c->stripe_size = G.def_size;
  c->stripe_count = G.def_count < G.n_osts ? G.def_count : G.n_osts;
  st->has = 1;
  int rc = instantiate(st, 0);
  if (rc) st->has = 0;
  return rc;
}

/* Checks and normalizes a layout set by a user: 0 or -EINVAL. */
static int validate(struct lt_layout *l) {
  uint64_t n = G.n_osts;
  if (l->n_comps < 1 || (!l->composite && l->n_comps != 1)) return -EINVAL;
  for (int i = 0; i < l->n_comps; i++) {
    struct lt_comp *c = &l->comps[i];
    if (c->start != (i ? l->comps[i - 1].end : 0) || c->end <= c->start) return -EINVAL;
    if (c->end == LT_EOF && i != l->n_comps - 1) return -EINVAL;
    if (!l->composite && c->end != LT_EOF) return -EINVAL;
    if (c->stripe_size == 0) c->stripe_size = G.def_size;
    if (c->stripe_size > UINT32_MAX) return -EINVAL;
    if (c->pattern == PAT_MDT) {
      if (i != 0 || c->end == LT_EOF || c->n_osts != 0) return -EINVAL;
      continue;
    }
    if (c->pattern != PAT_RAID0 && c->pattern != PAT_OVERSTRIPING) return -EINVAL;
    uint64_t cnt = c->stripe_count;
    if (cnt == 0) /* default */
      cnt = c->n_osts ? (uint64_t)c->n_osts : (G.def_count < n ? G.def_count : n);
    else if (cnt >= 65535) /* -1: all OSTs */
      cnt = c->n_osts ? (uint64_t)c->n_osts : n;
    if (cnt == 0 || cnt > LT_MAX_STRIPES) return -EINVAL;
    if (c->pattern == PAT_RAID0 && cnt > n) return -EINVAL;
    c->stripe_count = cnt;
    if (c->n_osts) {
      if ((uint64_t)c->n_osts != cnt) return -EINVAL;
      for (int k = 0; k < c->n_osts; k++) {
        if (c->osts[k] >= n) return -EINVAL;
        for (int j = 0; j < k && c->pattern == PAT_RAID0; j++)
          if (c->osts[j] == c->osts[k]) return -EINVAL;
      }
      c->flags |= LT_FL_INIT;
    } else {
      c->flags &= ~LT_FL_INIT;
    }
  }
  return 0;
}

/* Under st->mu with the layout loaded: whether any object of the file holds bytes. */
static int has_object_data(struct istate *st) {
  if (!st->has) return 0;
  char name[64];
  for (int c = 0; c < st->lay.n_comps; c++) {
    const struct lt_comp *cp = &st->lay.comps[c];
    int n = cp->pattern == PAT_MDT ? 1 : cp->n_osts;
    for (int s = 0; s < n; s++) {
      int dfd = obj_dir(cp, s);
      struct stat sb;
      if (dfd < 0) continue;
      obj_name(name, sizeof name, st->ino, c, s, cp->pattern == PAT_MDT);
      if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && (sb.st_size > 0 || sb.st_blocks > 0)) return 1;
    }
  }
  return 0;
}

static int strip_value(const char *value, size_t size, char **out) {
  while (size > 0 && (value[size - 1] == '\0' || value[size - 1] == '\n' || value[size - 1] == ' ' ||
                      value[size - 1] == '\t' || value[size - 1] == '\r'))
    size--;
  if (size >= LT_TEXT_MAX) return -EINVAL;
  char *t = malloc(size + 1);
  if (!t) return -ENOMEM;
  memcpy(t, value, size);
  t[size] = '\0';
  if (strlen(t) != size) { /* NUL inside */
    free(t);
    return -EINVAL;
  }
  *out = t;
  return 0;
}

/* setxattr trusted.lov (value NULL: removexattr) on the file of st. */
static int set_layout(struct istate *st, const char *value, size_t size, int flags) {
  struct lt_layout *nl = NULL;
  if (value) {
    char *text;
    int rc = strip_value(value, size, &text);
    if (rc) return rc;
    nl = malloc(sizeof *nl);
    if (!nl) {
      free(text);
      return -ENOMEM;
    }
    rc = lt_parse(text, nl);
    free(text);
    if (rc == 0) rc = validate(nl);
    if (rc) {
      free(nl);
      return -EINVAL;
    }
  }
  pthread_rwlock_wrlock(&st->rw);
  pthread_mutex_lock(&st->mu);
  int rc = st_load(st);
  struct stat sb;
  if (rc) goto out;
  if (value && (flags & XATTR_CREATE) && st->has) {
    rc = -EEXIST;
  } else if (((flags & XATTR_REPLACE) || !value) && !st->has) {
    rc = -ENODATA;
  } else if (fstat(st->pfd, &sb) != 0) {
    rc = -errno;
  } else if (sb.st_size > 0 || has_object_data(st)) {
    rc = -EBUSY; /* the file has data: its layout is fixed */
  }
  if (rc) goto out;
  close_objects(st);
  if (st->has) unlink_objects(st->ino, &st->lay);
  if (!value) {
    if (fremovexattr(st->pfd, LAYOUT_XATTR) != 0) rc = -errno;
    st->has = 0;
    goto out;
  }
  unlink_objects(st->ino, nl); /* stale objects of an earlier inode of the same number */
  st->lay = *nl;
  st->has = 1;
  rc = st_store(st);
  if (rc) st->loaded = 0; /* read back whatever is stored */
out:
  pthread_mutex_unlock(&st->mu);
  pthread_rwlock_unlock(&st->rw);
  free(nl);
  return rc;
}

/* The size of object s of component c when the file is size bytes long and dense. */
static uint64_t obj_size(const struct lt_comp *c, int s, uint64_t size) {
  if (size <= c->start) return 0;
  uint64_t r = (c->end != LT_EOF && size > c->end ? c->end : size) - c->start;
  if (c->pattern == PAT_MDT) return r;
  uint64_t ss = c->stripe_size, width = ss * (uint64_t)c->n_osts, rem = r % width, off = (uint64_t)s * ss;
  return r / width * ss + (rem > off ? (rem - off < ss ? rem - off : ss) : 0);
}

static int do_truncate(struct istate *st, off_t size) {
  pthread_rwlock_wrlock(&st->rw);
  pthread_mutex_lock(&st->mu);
  int rc = st_load(st);
  for (int c = 0; rc == 0 && st->has && c < st->lay.n_comps; c++) {
    const struct lt_comp *cp = &st->lay.comps[c];
    int n = cp->pattern == PAT_MDT ? 1 : cp->n_osts;
    for (int s = 0; rc == 0 && s < n; s++) {
      int fd = obj_fd(st, c, s, 0);
      if (fd == -ENOENT) continue;
      if (fd < 0) {
        rc = fd;
        break;
      }
      struct stat sb;
      uint64_t want = obj_size(cp, s, (uint64_t)size);
      if (fstat(fd, &sb) != 0)
        rc = -errno;
      else if ((uint64_t)sb.st_size > want && ftruncate(fd, (off_t)want) != 0)
        rc = -errno;
    }
  }
  if (rc == 0) rc = pf_truncate(st, size);
  pthread_mutex_unlock(&st->mu);
  pthread_rwlock_unlock(&st->rw);
  return rc;
}

/* One piece of a request: a part of the file in one object (or in no object). */
struct piece {
  int tgt;         /* the target serving it, -1: none (no layout, not instantiated: zeros) */
  int fd;          /* the object, -1: none (reads return zeros) */
  uint64_t objoff; /* offset in the object */
  size_t len;
};

/* Under st->mu with the layout loaded. */
static int map_piece(struct istate *st, uint64_t pos, size_t rem, int write, struct piece *p) {
  p->tgt = -1;
  p->fd = -1;
  p->objoff = 0;
  p->len = rem;
  if (!st->has) return write ? -EIO : 0;
  int c = 0;
  while (c < st->lay.n_comps && !(pos >= st->lay.comps[c].start && pos < st->lay.comps[c].end)) c++;
  if (c == st->lay.n_comps) return write ? -EFBIG : 0;
  struct lt_comp *cp = &st->lay.comps[c];
  uint64_t r = pos - cp->start;
  if (cp->end != LT_EOF && cp->end - pos < p->len) p->len = (size_t)(cp->end - pos);
  int s = 0, rc;
  if (cp->pattern == PAT_MDT) {
    if (!(cp->flags & LT_FL_INIT)) {
      if (!write) return 0;
      if ((rc = instantiate(st, c)) != 0) return rc;
    }
    p->tgt = (int)G.n_osts;
    p->objoff = r;
  } else {
    if (cp->n_osts == 0) {
      if (!write) return 0;
      if ((rc = instantiate(st, c)) != 0) return rc;
    }
    uint64_t ss = cp->stripe_size, n = (uint64_t)cp->n_osts;
    s = (int)((r / ss) % n);
    p->objoff = r / (ss * n) * ss + r % ss;
    if (ss - r % ss < p->len) p->len = (size_t)(ss - r % ss);
    if (cp->osts[s] >= G.n_osts) return -EIO;
    p->tgt = (int)cp->osts[s];
  }
  int fd = obj_fd(st, c, s, write);
  if (fd < 0 && !(fd == -ENOENT && !write)) return fd;
  p->fd = fd;
  return 0;
}

static int do_read(struct istate *st, char *buf, size_t size, off_t off) {
  __atomic_add_fetch(&G.rd_reqs, 1, __ATOMIC_RELAXED);
  atomic_max(&G.rd_max, size);
  pthread_rwlock_rdlock(&st->rw);
  struct stat sb;
  int rc = 0;
  size_t done = 0;
  if (fstat(st->pfd, &sb) != 0) {
    rc = -errno;
    goto out;
  }
  if (off >= sb.st_size) goto out;
  if (size > (uint64_t)(sb.st_size - off)) size = (size_t)(sb.st_size - off);
  pthread_mutex_lock(&st->mu);
  rc = st_load(st);
  pthread_mutex_unlock(&st->mu);
  while (rc == 0 && done < size) {
    struct piece p;
    pthread_mutex_lock(&st->mu);
    rc = map_piece(st, (uint64_t)off + done, size - done, 0, &p);
    pthread_mutex_unlock(&st->mu);
    if (rc) break;
    struct target *t = p.tgt >= 0 ? &G.tg[p.tgt] : NULL;
    uint64_t t0 = t ? tg_acquire(t) : 0;
    if (t) t0 += tg_seek(t, p.fd, p.objoff, p.len);
    size_t got = 0;
    while (p.fd >= 0 && got < p.len) {
      ssize_t n = pread(p.fd, buf + done + got, p.len - got, (off_t)(p.objoff + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) rc = -errno;
      if (n <= 0) break; /* 0: the object ends here, the rest is a hole */
      got += (size_t)n;
    }
    if (rc == 0) memset(buf + done + got, 0, p.len - got);
    if (t) tg_release(t, t0, rc ? got : p.len, 0);
    if (rc == 0) done += p.len;
  }
out:
  pthread_rwlock_unlock(&st->rw);
  if (rc) return rc;
  __atomic_add_fetch(&G.rd_bytes, done, __ATOMIC_RELAXED);
  return (int)done;
}

static int do_write(struct istate *st, const char *buf, size_t size, off_t off) {
  __atomic_add_fetch(&G.wr_reqs, 1, __ATOMIC_RELAXED);
  atomic_max(&G.wr_max, size);
  pthread_rwlock_rdlock(&st->rw);
  size_t done = 0;
  pthread_mutex_lock(&st->mu);
  int rc = st_load(st);
  if (rc == 0 && !st->has) rc = default_layout(st);
  if (rc == 0) {
    uint64_t last = st->lay.comps[st->lay.n_comps - 1].end;
    if (last != LT_EOF && (uint64_t)off >= last)
      rc = -EFBIG; /* beyond the last component, like Lustre */
    else if (last != LT_EOF && size > last - (uint64_t)off)
      size = (size_t)(last - (uint64_t)off);
  }
  pthread_mutex_unlock(&st->mu);
  while (rc == 0 && done < size) {
    struct piece p;
    pthread_mutex_lock(&st->mu);
    rc = map_piece(st, (uint64_t)off + done, size - done, 1, &p);
    pthread_mutex_unlock(&st->mu);
    if (rc) break;
    struct target *t = &G.tg[p.tgt];
    uint64_t t0 = tg_acquire(t);
    t0 += tg_seek(t, p.fd, p.objoff, p.len);
    size_t put = 0;
    while (put < p.len) {
      ssize_t n = pwrite(p.fd, buf + done + put, p.len - put, (off_t)(p.objoff + put));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        rc = -errno;
        break;
      }
      put += (size_t)n;
    }
    tg_release(t, t0, put, 1);
    done += put;
  }
  if (done > 0) { /* the logical size and mtime of the placeholder */
    pthread_mutex_lock(&st->mu);
    struct stat sb;
    int rc2 = fstat(st->pfd, &sb) == 0 ? 0 : -errno;
    if (rc2 == 0 && (uint64_t)off + done > (uint64_t)sb.st_size) rc2 = pf_truncate(st, (off_t)(off + done));
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_NOW}};
    if (rc2 == 0 && futimens(st->pfd, ts) != 0) rc2 = -errno;
    pthread_mutex_unlock(&st->mu);
    if (rc2) {
      rc = rc2;
      done = 0;
    }
  }
  pthread_rwlock_unlock(&st->rw);
  if (done > 0) { /* a short write is reported as such */
    __atomic_add_fetch(&G.wr_bytes, done, __ATOMIC_RELAXED);
    return (int)done;
  }
  return rc;
}

/* After the last link of an inode went: its objects go too. */
static void drop_objects(ino_t ino, const struct lt_layout *l) {
  struct istate *st = state_find(ino);
  if (st) {
    pthread_rwlock_wrlock(&st->rw);
    pthread_mutex_lock(&st->mu);
    close_objects(st);
    st->loaded = 0;
    pthread_mutex_unlock(&st->mu);
    pthread_rwlock_unlock(&st->rw);
  }
  unlink_objects(ino, l);
  if (st) state_put(st);
}

/* ------------------------------------------------------------------------------------------ */
/* FUSE operations                                                                              */

static void *o_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  cfg->use_ino = 1;
  cfg->readdir_ino = 1;
  cfg->hard_remove = 0; /* unlinked open files are renamed to .fuse_hidden* until released */
  cfg->direct_io = 1;
  cfg->kernel_cache = 0;
  cfg->auto_cache = 0;
  cfg->nullpath_ok = 0;
  conn->max_write = 1u << 20;
  conn->max_read = 1u << 20;
  conn->max_readahead = 0;
  if (conn->max_background < 64) conn->max_background = 64;
  /* No splice: every request must pass the read hook below. */
  conn->want &=
      ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  return NULL;
}

static int o_getattr(const char *path, struct stat *sb, struct fuse_file_info *fi) {
  (void)fi;
  const char *r = rel(path);
  if (fstatat(G.mdt_fd, r, sb, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  if (!S_ISREG(sb->st_mode)) return 0;
  struct lt_layout l;
  int rc = read_layout_path(r, &l);
  sb->st_blocks = 0; /* the placeholder's own blocks (an xattr block) are not data */
  sb->st_blksize = (blksize_t)G.def_size;
  if (rc < 0) return rc;
  if (rc == 0) return 0;
  sb->st_blksize = (blksize_t)l.comps[0].stripe_size;
  char name[64];
  for (int c = 0; c < l.n_comps; c++) {
    const struct lt_comp *cp = &l.comps[c];
    for (int s = 0; s < comp_objects(cp); s++) {
      struct stat ob;
      int dfd = obj_dir(cp, s);
      if (dfd < 0) continue;
      obj_name(name, sizeof name, sb->st_ino, c, s, cp->pattern == PAT_MDT);
      if (fstatat(dfd, name, &ob, AT_SYMLINK_NOFOLLOW) == 0) sb->st_blocks += ob.st_blocks;
    }
  }
  return 0;
}

static int o_access(const char *path, int mask) {
  return faccessat(G.mdt_fd, rel(path), mask, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int o_readlink(const char *path, char *buf, size_t size) {
  if (size == 0) return -EINVAL;
  ssize_t n = readlinkat(G.mdt_fd, rel(path), buf, size - 1);
  if (n < 0) return -errno;
  buf[n] = '\0';
  return 0;
}

struct dirh {
  DIR *dp;
  struct dirent *entry;
  off_t offset;
};

static int o_opendir(const char *path, struct fuse_file_info *fi) {
  int fd = openat(G.mdt_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -errno;
  struct dirh *d = calloc(1, sizeof *d);
  if (!d) {
    close(fd);
    return -ENOMEM;
  }
  d->dp = fdopendir(fd);
  if (!d->dp) {
    int e = errno;
    close(fd);
    free(d);
    return -e;
  }
  fi->fh = (uint64_t)(uintptr_t)d;
  return 0;
}

static int o_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *fi,
                     enum fuse_readdir_flags flags) {
  (void)path;
  (void)flags;
  struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
  if (offset != d->offset) {
    seekdir(d->dp, offset);
    d->entry = NULL;
    d->offset = offset;
  }
  for (;;) {
    if (!d->entry) {
      errno = 0;
      d->entry = readdir(d->dp);
      if (!d->entry) {
        if (errno) return -errno;
        break;
      }
    }
    struct stat sb;
    memset(&sb, 0, sizeof sb);
    sb.st_ino = d->entry->d_ino;
    sb.st_mode = (mode_t)DTTOIF(d->entry->d_type);
    off_t next = telldir(d->dp);
    if (filler(buf, d->entry->d_name, &sb, next, 0)) break;
    d->entry = NULL;
    d->offset = next;
  }
  return 0;
}

static int o_releasedir(const char *path, struct fuse_file_info *fi) {
  (void)path;
  struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
  closedir(d->dp);
  free(d);
  return 0;
}

/* Gives a new entry to the caller (when the daemon is root); undoes the creation on failure. */
static int own_new(const char *r, mode_t mode, int is_dir) {
  if (!G.is_root) return 0;
  struct fuse_context *cx = fuse_get_context();
  uid_t uid = cx->uid;
  gid_t gid = cx->gid;
  char parent[PATH_MAX];
  const char *slash = strrchr(r, '/');
  if (slash) {
    size_t n = (size_t)(slash - r);
    if (n >= sizeof parent) n = sizeof parent - 1;
    memcpy(parent, r, n);
    parent[n] = '\0';
  } else {
    strcpy(parent, ".");
  }
  struct stat ps;
  if (fstatat(G.mdt_fd, parent, &ps, AT_SYMLINK_NOFOLLOW) == 0 && (ps.st_mode & S_ISGID))
    gid = (gid_t)-1; /* the backing file system gave it the directory's group */
  int rc = 0;
  if ((uid != 0 || (gid != 0 && gid != (gid_t)-1)) && fchownat(G.mdt_fd, r, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
    rc = -errno;
  else if (!S_ISLNK(mode) && (mode & (S_ISUID | S_ISGID)) && fchmodat(G.mdt_fd, r, mode & 07777, 0) != 0)
    rc = -errno; /* chown cleared them */
  if (rc) unlinkat(G.mdt_fd, r, is_dir ? AT_REMOVEDIR : 0);
  return rc;
}

static int o_mknod(const char *path, mode_t mode, dev_t rdev) {
  const char *r = rel(path);
  int rc;
  if (S_ISREG(mode)) {
    int fd = openat(G.mdt_fd, r, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
    rc = fd < 0 ? -errno : 0;
    if (fd >= 0) close(fd);
  } else if (S_ISFIFO(mode)) {
    rc = mkfifoat(G.mdt_fd, r, mode & 07777) == 0 ? 0 : -errno;
  } else {
    rc = mknodat(G.mdt_fd, r, mode, rdev) == 0 ? 0 : -errno;
  }
  return rc ? rc : own_new(r, mode, 0);
}

static int o_mkdir(const char *path, mode_t mode) {
  const char *r = rel(path);
  if (mkdirat(G.mdt_fd, r, mode & 07777) != 0) return -errno;
  return own_new(r, mode | S_IFDIR, 1);
}

static int o_symlink(const char *target, const char *path) {
  const char *r = rel(path);
  if (symlinkat(target, G.mdt_fd, r) != 0) return -errno;
  return own_new(r, S_IFLNK | 0777, 0);
}

static int o_rmdir(const char *path) { return unlinkat(G.mdt_fd, rel(path), AT_REMOVEDIR) == 0 ? 0 : -errno; }

static int o_unlink(const char *path) {
  const char *r = rel(path);
  struct lt_layout l;
  struct stat sb;
  int has = 0, rc = 0;
  pthread_mutex_lock(&G.ns_mu);
  if (fstatat(G.mdt_fd, r, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
    rc = -errno;
  } else {
    if (S_ISREG(sb.st_mode) && sb.st_nlink == 1) has = read_layout_path(r, &l);
    if (has < 0)
      rc = has;
    else if (unlinkat(G.mdt_fd, r, 0) != 0)
      rc = -errno;
    else if (has == 1)
      drop_objects(sb.st_ino, &l);
  }
  pthread_mutex_unlock(&G.ns_mu);
  return rc;
}

static int o_rename(const char *from, const char *to, unsigned int flags) {
  if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) return -EINVAL;
  const char *rf = rel(from), *rt = rel(to);
  struct lt_layout l;
  struct stat sf, stt;
  int has = 0, rc = 0;
  pthread_mutex_lock(&G.ns_mu);
  if (flags == 0 && fstatat(G.mdt_fd, rt, &stt, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(stt.st_mode) &&
      stt.st_nlink == 1 && fstatat(G.mdt_fd, rf, &sf, AT_SYMLINK_NOFOLLOW) == 0 && sf.st_ino != stt.st_ino)
    has = read_layout_path(rt, &l); /* the target's last link goes */
  if (has < 0)
    rc = has;
  else if (renameat2(G.mdt_fd, rf, G.mdt_fd, rt, flags) != 0)
    rc = -errno;
  else if (has == 1)
    drop_objects(stt.st_ino, &l);
  pthread_mutex_unlock(&G.ns_mu);
  return rc;
}

static int o_link(const char *from, const char *to) {
  pthread_mutex_lock(&G.ns_mu);
  int rc = linkat(G.mdt_fd, rel(from), G.mdt_fd, rel(to), 0) == 0 ? 0 : -errno;
  pthread_mutex_unlock(&G.ns_mu);
  return rc;
}

static int o_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)fi;
  return fchmodat(G.mdt_fd, rel(path), mode & 07777, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int o_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  (void)fi;
  return fchownat(G.mdt_fd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int o_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  (void)fi;
  return utimensat(G.mdt_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int o_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  if (size < 0) return -EINVAL;
  if (fi) return do_truncate((struct istate *)(uintptr_t)fi->fh, size);
  struct istate *st;
  int rc = state_open_path(rel(path), &st);
  if (rc) return rc;
  rc = do_truncate(st, size);
  state_put(st);
  return rc;
}

static int finish_open(struct istate *st, struct fuse_file_info *fi) {
  if (fi->flags & O_TRUNC) {
    int rc = do_truncate(st, 0);
    if (rc) {
      state_put(st);
      return rc;
    }
  }
  fi->fh = (uint64_t)(uintptr_t)st;
  fi->direct_io = 1; /* no page cache between the user and the OST limits */
  fi->keep_cache = 0;
  return 0;
}

static int o_open(const char *path, struct fuse_file_info *fi) {
  struct istate *st;
  int rc = state_open_path(rel(path), &st);
  return rc ? rc : finish_open(st, fi);
}

static int o_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  const char *r = rel(path);
  int rw = 1, fd = openat(G.mdt_fd, r, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
  if (fd >= 0) {
    int rc = own_new(r, mode | S_IFREG, 0);
    if (rc) {
      close(fd);
      return rc;
    }
  } else if (errno == EEXIST && !(fi->flags & O_EXCL)) { /* lost a race: open the existing one */
    struct istate *st;
    int rc = state_open_path(r, &st);
    return rc ? rc : finish_open(st, fi);
  } else {
    return -errno;
  }
  struct istate *st;
  int rc = state_from_fd(fd, rw, &st);
  return rc ? rc : finish_open(st, fi);
}

static int o_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  return do_read((struct istate *)(uintptr_t)fi->fh, buf, size, off);
}

static int o_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  return do_write((struct istate *)(uintptr_t)fi->fh, buf, size, off);
}

static int o_statfs(const char *path, struct statvfs *sv) {
  (void)path;
  return fstatvfs(G.mdt_fd, sv) == 0 ? 0 : -errno;
}

static int o_flush(const char *path, struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  return 0;
}

static int o_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  state_put((struct istate *)(uintptr_t)fi->fh);
  return 0;
}

static int o_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  struct istate *st = (struct istate *)(uintptr_t)fi->fh;
  int rc = 0;
  pthread_rwlock_rdlock(&st->rw); /* the fds stay open while it is held */
  pthread_mutex_lock(&st->mu);
  int *fds = malloc(LT_MAX_COMPS * LT_MAX_STRIPES * sizeof(int)), n = 0;
  for (int c = 0; fds && c < LT_MAX_COMPS; c++)
    for (int s = 0; st->fds[c] && s < LT_MAX_STRIPES; s++)
      if (st->fds[c][s] >= 0) fds[n++] = st->fds[c][s];
  pthread_mutex_unlock(&st->mu);
  if (!fds) rc = -ENOMEM;
  for (int i = 0; rc == 0 && i < n; i++)
    if ((datasync ? fdatasync(fds[i]) : fsync(fds[i])) != 0) rc = -errno;
  if (rc == 0 && (datasync ? fdatasync(st->pfd) : fsync(st->pfd)) != 0) rc = -errno;
  pthread_rwlock_unlock(&st->rw);
  free(fds);
  return rc;
}

/* cp and friends: served here in 1 MiB pieces (the kernel's fallback splices 4 KiB pages). */
static ssize_t o_copy_file_range(const char *path_in, struct fuse_file_info *fi_in, off_t off_in, const char *path_out,
                                 struct fuse_file_info *fi_out, off_t off_out, size_t len, int flags) {
  (void)path_in;
  (void)path_out;
  if (flags != 0) return -EINVAL;
  struct istate *src = (struct istate *)(uintptr_t)fi_in->fh, *dst = (struct istate *)(uintptr_t)fi_out->fh;
  const size_t chunk = 1u << 20;
  if (len > 64 * chunk) len = 64 * chunk; /* return now and then: the caller loops */
  char *buf = malloc(chunk);
  if (!buf) return -ENOMEM;
  ssize_t total = 0;
  while ((size_t)total < len) {
    size_t want = len - (size_t)total < chunk ? len - (size_t)total : chunk;
    int n = do_read(src, buf, want, off_in + total);
    if (n <= 0) {
      if (total == 0) total = n;
      break;
    }
    int w = do_write(dst, buf, (size_t)n, off_out + total);
    if (w < 0) {
      if (total == 0) total = w;
      break;
    }
    total += w;
    if (w < n || (size_t)n < want) break;
  }
  free(buf);
  return total;
}

static int format_stats(char *buf, size_t len) {
  size_t n = 0;
  uint64_t now = now_ns();
  for (unsigned k = 0; k <= G.n_osts; k++) {
    struct target *t = &G.tg[k];
    char name[32];
    if (k < G.n_osts)
      snprintf(name, sizeof name, "ost%u", k);
    else
      strcpy(name, "mdt");
    pthread_mutex_lock(&t->mu);
    uint64_t busy = t->busy_ns + (t->in_use ? now - t->busy_since : 0);
    n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s %llu %llu %llu %llu\n", name,
                          (unsigned long long)t->read_bytes, (unsigned long long)t->write_bytes,
                          (unsigned long long)busy, (unsigned long long)t->max_queue);
    pthread_mutex_unlock(&t->mu);
  }
  return (int)n;
}

static void reset_stats(void) {
  uint64_t now = now_ns();
  for (unsigned k = 0; k <= G.n_osts; k++) {
    struct target *t = &G.tg[k];
    pthread_mutex_lock(&t->mu);
    t->read_bytes = t->write_bytes = t->busy_ns = t->max_queue = 0;
    t->busy_since = now;
    pthread_mutex_unlock(&t->mu);
  }
  __atomic_store_n(&G.rd_reqs, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&G.wr_reqs, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&G.rd_max, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&G.wr_max, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&G.rd_bytes, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&G.wr_bytes, 0, __ATOMIC_RELAXED);
}

static int is_hidden(const char *name) { return strncmp(name, HIDDEN_PREFIX, sizeof HIDDEN_PREFIX - 1) == 0; }

static int o_setxattr(const char *path, const char *name, const char *value, size_t size, int flags) {
  const char *r = rel(path);
  if (strcmp(name, LT_XATTR) == 0) {
    struct stat sb;
    if (fstatat(G.mdt_fd, r, &sb, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
    if (!S_ISREG(sb.st_mode)) return -ENOTSUP; /* no default layouts of directories */
    struct istate *st;
    int rc = state_open_path(r, &st);
    if (rc) return rc;
    rc = set_layout(st, value, size, flags);
    state_put(st);
    return rc;
  }
  if (is_hidden(name)) {
    if (strcmp(name, STATS_XATTR) == 0 && strcmp(r, ".") == 0) {
      char *v;
      int rc = strip_value(value, size, &v);
      if (rc) return rc;
      rc = strcmp(v, "reset") == 0 ? 0 : -EINVAL;
      free(v);
      if (rc == 0) reset_stats();
      return rc;
    }
    return -EPERM;
  }
  char p[PATH_MAX + 64];
  int rc = xpath(p, sizeof p, r);
  if (rc) return rc;
  return lsetxattr(p, name, value, size, flags) == 0 ? 0 : -errno;
}

static int reply_text(const char *text, size_t n, char *value, size_t size) {
  if (size == 0) return (int)n;
  if (n > size) return -ERANGE;
  memcpy(value, text, n);
  return (int)n;
}

static int o_getxattr(const char *path, const char *name, char *value, size_t size) {
  const char *r = rel(path);
  char p[PATH_MAX + 64];
  int rc = xpath(p, sizeof p, r);
  if (rc) return rc;
  if (strcmp(name, LT_XATTR) == 0) {
    struct stat sb;
    if (fstatat(G.mdt_fd, r, &sb, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
    if (!S_ISREG(sb.st_mode)) return -ENODATA;
    ssize_t n = lgetxattr(p, LAYOUT_XATTR, value, size);
    return n < 0 ? -errno : (int)n;
  }
  if (is_hidden(name)) {
    if (strcmp(r, ".") != 0) return -ENODATA;
    if (strcmp(name, STATS_XATTR) == 0) {
      size_t len = 128 * (G.n_osts + 1);
      char *text = malloc(len);
      if (!text) return -ENOMEM;
      int n = format_stats(text, len);
      rc = reply_text(text, (size_t)n, value, size);
      free(text);
      return rc;
    }
    if (strcmp(name, CONFIG_XATTR) == 0) {
      char text[512];
      int n = snprintf(text, sizeof text,
                       "osts %u\nost_bw %llu\nost_concurrency %u\nmdt_bw %llu\ndefault_stripe_count %llu\n"
                       "default_stripe_size %llu\nparallel_direct_writes %d\n",
                       G.n_osts, (unsigned long long)G.ost_bw, G.conc, (unsigned long long)G.mdt_bw,
                       (unsigned long long)G.def_count, (unsigned long long)G.def_size, G.own_mount);
      return reply_text(text, (size_t)n, value, size);
    }
    if (strcmp(name, REQS_XATTR) == 0) {
      char text[512];
      int n = snprintf(text, sizeof text,
                       "read_requests %llu read_bytes %llu max_read %llu\n"
                       "write_requests %llu write_bytes %llu max_write %llu\n"
                       "parallel_write_opens %llu\n",
                       (unsigned long long)__atomic_load_n(&G.rd_reqs, __ATOMIC_RELAXED),
                       (unsigned long long)__atomic_load_n(&G.rd_bytes, __ATOMIC_RELAXED),
                       (unsigned long long)__atomic_load_n(&G.rd_max, __ATOMIC_RELAXED),
                       (unsigned long long)__atomic_load_n(&G.wr_reqs, __ATOMIC_RELAXED),
                       (unsigned long long)__atomic_load_n(&G.wr_bytes, __ATOMIC_RELAXED),
                       (unsigned long long)__atomic_load_n(&G.wr_max, __ATOMIC_RELAXED),
                       (unsigned long long)__atomic_load_n(&G.parallel_opens, __ATOMIC_RELAXED));
      return reply_text(text, (size_t)n, value, size);
    }
    return -ENODATA;
  }
  ssize_t n = lgetxattr(p, name, value, size);
  return n < 0 ? -errno : (int)n;
}

static int o_listxattr(const char *path, char *list, size_t size) {
  char p[PATH_MAX + 64];
  int rc = xpath(p, sizeof p, rel(path));
  if (rc) return rc;
  char *raw = NULL;
  ssize_t n;
  for (;;) {
    n = llistxattr(p, NULL, 0);
    if (n < 0) return -errno;
    char *nr = realloc(raw, (size_t)n + 1);
    if (!nr) {
      free(raw);
      return -ENOMEM;
    }
    raw = nr;
    n = n ? llistxattr(p, raw, (size_t)n) : 0;
    if (n >= 0) break;
    if (errno != ERANGE) {
      free(raw);
      return -errno;
    }
  }
  char *out = malloc((size_t)n + sizeof LT_XATTR);
  if (!out) {
    free(raw);
    return -ENOMEM;
  }
  size_t len = 0;
  int has_layout = 0;
  for (ssize_t i = 0; i < n;) {
    const char *name = raw + i;
    size_t l = strnlen(name, (size_t)(n - i)) + 1;
    if (strcmp(name, LAYOUT_XATTR) == 0) has_layout = 1;
    if (!is_hidden(name) && strcmp(name, LT_XATTR) != 0) {
      memcpy(out + len, name, l);
      len += l;
    }
    i += (ssize_t)l;
  }
  if (has_layout) {
    memcpy(out + len, LT_XATTR, sizeof LT_XATTR);
    len += sizeof LT_XATTR;
  }
  free(raw);
  rc = reply_text(out, len, list, size);
  free(out);
  return rc;
}

static int o_removexattr(const char *path, const char *name) {
  const char *r = rel(path);
  if (strcmp(name, LT_XATTR) == 0) {
    struct stat sb;
    if (fstatat(G.mdt_fd, r, &sb, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
    if (!S_ISREG(sb.st_mode)) return -ENODATA;
    struct istate *st;
    int rc = state_open_path(r, &st);
    if (rc) return rc;
    rc = set_layout(st, NULL, 0, 0);
    state_put(st);
    return rc;
  }
  if (is_hidden(name)) return -EPERM;
  char p[PATH_MAX + 64];
  int rc = xpath(p, sizeof p, r);
  if (rc) return rc;
  return lremovexattr(p, name) == 0 ? 0 : -errno;
}

static const struct fuse_operations ops = {
    .init = o_init,
    .getattr = o_getattr,
    .access = o_access,
    .readlink = o_readlink,
    .opendir = o_opendir,
    .readdir = o_readdir,
    .releasedir = o_releasedir,
    .mknod = o_mknod,
    .mkdir = o_mkdir,
    .symlink = o_symlink,
    .unlink = o_unlink,
    .rmdir = o_rmdir,
    .rename = o_rename,
    .link = o_link,
    .chmod = o_chmod,
    .chown = o_chown,
    .truncate = o_truncate,
    .utimens = o_utimens,
    .open = o_open,
    .create = o_create,
    .read = o_read,
    .write = o_write,
    .statfs = o_statfs,
    .flush = o_flush,
    .release = o_release,
    .fsync = o_fsync,
    .setxattr = o_setxattr,
    .getxattr = o_getxattr,
    .listxattr = o_listxattr,
    .removexattr = o_removexattr,
    .copy_file_range = o_copy_file_range,
};

/* ------------------------------------------------------------------------------------------ */
/* Parallel direct writes. Without FOPEN_PARALLEL_DIRECT_WRITES in the reply to OPEN/CREATE the   */
/* kernel holds the inode lock during each direct write, so writes to one file reach the OSTs     */
/* one at a time whatever their OSTs. libfuse 3.14 has no way to set that flag, so ostfs mounts   */
/* /dev/fuse itself and passes it to libfuse with custom I/O hooks: the read hook notes the       */
/* unique ids of OPEN and CREATE requests, the write hook sets the flag in their successful       */
/* replies (struct fuse_open_out is the last 16 bytes of both). ABI constants of <linux/fuse.h>.  */

#define K_FUSE_OPEN 14
#define K_FUSE_CREATE 35
#define K_FOPEN_PARALLEL_DIRECT_WRITES (1u << 6)
#define K_OPEN_OUT_SIZE 16 /* u64 fh, u32 open_flags, u32 padding */
#define MAX_PENDING_OPENS 4096

struct k_in_header {
  uint32_t len, opcode;
  uint64_t unique;
};
struct k_out_header {
  uint32_t len;
  int32_t error;
  uint64_t unique;
};

static struct {
  pthread_mutex_t mu;
  int n;
  uint64_t unique[MAX_PENDING_OPENS];
} PO = {.mu = PTHREAD_MUTEX_INITIALIZER};

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata) {
  (void)userdata;
  ssize_t n = read(fd, buf, len);
  if (n >= (ssize_t)sizeof(struct k_in_header)) {
    const struct k_in_header *h = buf;
    if (h->opcode == K_FUSE_OPEN || h->opcode == K_FUSE_CREATE) {
      int e = errno;
      pthread_mutex_lock(&PO.mu);
      if (PO.n < MAX_PENDING_OPENS) { /* else that file just gets no parallel writes */
        PO.unique[PO.n] = h->unique;
        __atomic_store_n(&PO.n, PO.n + 1, __ATOMIC_RELEASE);
      }
      pthread_mutex_unlock(&PO.mu);
      errno = e;
    }
  }
  return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata) {
  (void)userdata;
  if (__atomic_load_n(&PO.n, __ATOMIC_ACQUIRE) > 0 && count >= 1 && iov[0].iov_len >= sizeof(struct k_out_header)) {
    const struct k_out_header *h = iov[0].iov_base;
    int found = 0;
    pthread_mutex_lock(&PO.mu);
    for (int i = 0; i < PO.n; i++) {
      if (PO.unique[i] == h->unique) {
        PO.unique[i] = PO.unique[PO.n - 1];
        __atomic_store_n(&PO.n, PO.n - 1, __ATOMIC_RELEASE);
        found = 1;
        break;
      }
    }
    pthread_mutex_unlock(&PO.mu);
    if (found && h->error == 0 && count >= 2 && iov[count - 1].iov_len >= K_OPEN_OUT_SIZE) {
      char *out = (char *)iov[count - 1].iov_base + iov[count - 1].iov_len - K_OPEN_OUT_SIZE;
      uint32_t flags;
      memcpy(&flags, out + 8, sizeof flags);
      flags |= K_FOPEN_PARALLEL_DIRECT_WRITES;
      memcpy(out + 8, &flags, sizeof flags);
      __atomic_add_fetch(&G.parallel_opens, 1, __ATOMIC_RELAXED);
    }
  }
  return writev(fd, iov, count);
}

/* Mounts like libfuse does for root (mount(2) with an fd of /dev/fuse); returns the fd or -1. */
static int own_mount(const char *mnt) {
  struct stat sb;
  if (stat(mnt, &sb) != 0) {
    fprintf(stderr, "ostfs: %s: %s\n", mnt, strerror(errno));
    return -1;
  }
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "ostfs: /dev/fuse: %s\n", strerror(errno));
    return -1;
  }
  char opts[256];
  snprintf(opts, sizeof opts,
           "fd=%d,rootmode=%o,user_id=%u,group_id=%u,default_permissions,allow_other,max_read=1048576", fd,
           (unsigned)(sb.st_mode & S_IFMT), (unsigned)getuid(), (unsigned)getgid());
  if (mount("ostfs", mnt, "fuse.ostfs", MS_NOSUID | MS_NODEV, opts) != 0) {
    fprintf(stderr, "ostfs: mount %s: %s\n", mnt, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* ------------------------------------------------------------------------------------------ */
/* Setup                                                                                        */

static void usage(FILE *f, const char *prog) {
  fprintf(f,
          "usage: %s [ostfs options] [fuse options] BACKING MOUNTPOINT\n"
          "ostfs options (sizes: integers, suffix k/m/g = KiB/MiB/GiB):\n"
          "  --osts N                  emulated OSTs (default 8)\n"
          "  --ost-bw BYTES_PER_S      bandwidth of each OST (default 0: unlimited)\n"
          "  --ost-concurrency C       requests each OST serves at once (default 1)\n"
          "  --mdt-bw BYTES_PER_S      bandwidth of the MDT for data on MDT (default: --ost-bw)\n"
          "  --ost-seek-us US          time a request costs when it does not continue the OST's\n"
          "                            previous one, as a disk seek (default 0)\n"
          "  --default-stripe-count K  stripes of files written without a layout (default 1)\n"
          "  --default-stripe-size S   their stripe size (default 1m)\n"
          "  --no-parallel-writes      mount through libfuse: the kernel then serializes the\n"
          "                            direct writes to each file (see README.md)\n",
          prog);
}

static int parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (*s == '-' || *s == '\0') return -1;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return -1;
  uint64_t mul = 1;
  if (*end == 'k' || *end == 'K')
    mul = 1ull << 10, end++;
  else if (*end == 'm' || *end == 'M')
    mul = 1ull << 20, end++;
  else if (*end == 'g' || *end == 'G')
    mul = 1ull << 30, end++;
  if (*end != '\0' || (mul > 1 && v > UINT64_MAX / mul)) return -1;
  *out = v * mul;
  return 0;
}

static int nonopt_proc(void *data, const char *arg, int key, struct fuse_args *outargs) {
  (void)data;
  (void)outargs;
  if (key == FUSE_OPT_KEY_NONOPT && !G.backing) {
    G.backing = realpath(arg, NULL);
    if (!G.backing) {
      fprintf(stderr, "ostfs: backing directory %s: %s\n", arg, strerror(errno));
      return -1;
    }
    return 0;
  }
  return 1;
}

static int open_dir(int parent, const char *name) {
  if (mkdirat(parent, name, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "ostfs: mkdir %s/%s: %s\n", G.backing, name, strerror(errno));
    return -1;
  }
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) fprintf(stderr, "ostfs: open %s/%s: %s\n", G.backing, name, strerror(errno));
  return fd;
}

int main(int argc, char *argv[]) {
  struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
  if (fuse_opt_add_arg(&args, argv[0]) != 0) return 1;
  /* Every numeric option: where it goes and its valid range (checked in one place). */
  static uint64_t osts_v = 8, conc_v = 1, seek_us = 0;
  static struct {
    const char *name;
    uint64_t *dst, min, max;
    int *set;
  } opts_tab[] = {{"--osts", &osts_v, 1, 65535, NULL},
                  {"--ost-bw", &G.ost_bw, 0, UINT64_MAX, NULL},
                  {"--ost-concurrency", &conc_v, 1, 4096, NULL},
                  {"--mdt-bw", &G.mdt_bw, 0, UINT64_MAX, &G.mdt_bw_set},
                  {"--default-stripe-count", &G.def_count, 1, LT_MAX_STRIPES, NULL},
                  {"--default-stripe-size", &G.def_size, 1, UINT32_MAX, NULL},
                  {"--ost-seek-us", &seek_us, 0, 60000000, NULL}};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = NULL;
    int kind = -1;
    for (size_t k = 0; k < sizeof opts_tab / sizeof opts_tab[0]; k++) {
      size_t n = strlen(opts_tab[k].name);
      if (strncmp(a, opts_tab[k].name, n) == 0 && (a[n] == '\0' || a[n] == '=')) {
        kind = (int)k;
        val = a[n] == '=' ? a + n + 1 : NULL;
      }
    }
    if (kind < 0 && strcmp(a, "--no-parallel-writes") == 0) {
      G.no_parallel_writes = 1;
      continue;
    }
    if (kind < 0) {
      if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        usage(stdout, argv[0]);
        printf("\nfuse options:\n");
        fuse_cmdline_help();
        fuse_lib_help(&args);
        return 0;
      }
      if (fuse_opt_add_arg(&args, a) != 0) return 1;
      continue;
    }
    if (!val) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ostfs: %s needs a value\n", a);
        return 2;
      }
      val = argv[++i];
    }
    uint64_t v;
    if (parse_size(val, &v) != 0) {
      fprintf(stderr, "ostfs: bad value for %s: %s\n", a, val);
      return 2;
    }
    if (v < opts_tab[kind].min || v > opts_tab[kind].max) {
      fprintf(stderr, "ostfs: %s must be %llu..%llu\n", opts_tab[kind].name, (unsigned long long)opts_tab[kind].min,
              (unsigned long long)opts_tab[kind].max);
      return 2;
    }
    *opts_tab[kind].dst = v;
    if (opts_tab[kind].set) *opts_tab[kind].set = 1;
  }
  G.n_osts = (unsigned)osts_v;
  G.conc = (unsigned)conc_v;
  G.seek_ns = seek_us * 1000;
  if (!G.mdt_bw_set) G.mdt_bw = G.ost_bw;
  if (fuse_opt_parse(&args, NULL, NULL, nonopt_proc) != 0) return 2;
  if (fuse_opt_add_arg(&args, "-ofsname=ostfs,subtype=ostfs,default_permissions,allow_other,max_read=1048576") != 0)
    return 1;
  struct fuse_cmdline_opts co;
  if (fuse_parse_cmdline(&args, &co) != 0) return 2;
  if (co.show_version) {
    printf("ostfs, FUSE library version %s\n", fuse_pkgversion());
    return 0;
  }
  if (!G.backing || !co.mountpoint) {
    usage(stderr, argv[0]);
    return 2;
  }

  umask(0);
  G.is_root = geteuid() == 0;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int bfd = open(G.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (bfd < 0) {
    fprintf(stderr, "ostfs: %s: %s\n", G.backing, strerror(errno));
    return 1;
  }
  G.mdt_fd = open_dir(bfd, "mdt");
  G.mdtdata_fd = open_dir(bfd, "mdt-data");
  G.ost_fd = calloc(G.n_osts, sizeof(int));
  G.tg = calloc(G.n_osts + 1, sizeof *G.tg);
  if (G.mdt_fd < 0 || G.mdtdata_fd < 0 || !G.ost_fd || !G.tg) return 1;
  for (unsigned k = 0; k < G.n_osts; k++) {
    char name[32];
    snprintf(name, sizeof name, "ost%u", k);
    if ((G.ost_fd[k] = open_dir(bfd, name)) < 0) return 1;
  }
  close(bfd);
  for (unsigned k = 0; k <= G.n_osts; k++) {
    pthread_mutex_init(&G.tg[k].mu, NULL);
    pthread_cond_init(&G.tg[k].cv, NULL);
    G.tg[k].bw = k < G.n_osts ? G.ost_bw : G.mdt_bw;
    G.tg[k].conc = G.conc;
    G.tg[k].last_fd = -1;
  }
  pthread_mutex_init(&G.ns_mu, NULL);
  fprintf(stderr,
          "ostfs: backing %s, %u OSTs of %llu B/s x %u, MDT %llu B/s, default layout %llu x %llu B, "
          "mount %s\n",
          G.backing, G.n_osts, (unsigned long long)G.ost_bw, G.conc, (unsigned long long)G.mdt_bw,
          (unsigned long long)G.def_count, (unsigned long long)G.def_size, co.mountpoint);

  int ret = 1;
  struct fuse *f = fuse_new(&args, &ops, sizeof ops, NULL);
  if (!f) goto out_args;
  G.own_mount = G.is_root && !G.no_parallel_writes;
  if (G.own_mount) {
    char *mp = realpath(co.mountpoint, NULL);
    int fd = mp ? own_mount(mp) : -1;
    if (!mp) fprintf(stderr, "ostfs: %s: %s\n", co.mountpoint, strerror(errno));
    if (fd < 0) {
      free(mp);
      goto out_destroy;
    }
    free(co.mountpoint);
    co.mountpoint = mp;
    static const struct fuse_custom_io io = {.read = io_read, .writev = io_writev};
    if (fuse_session_custom_io(fuse_get_session(f), &io, fd) != 0) {
      fprintf(stderr, "ostfs: fuse_session_custom_io failed\n");
      umount2(mp, MNT_DETACH);
      close(fd);
      goto out_destroy;
    }
  } else if (fuse_mount(f, co.mountpoint) != 0) {
    goto out_destroy;
  }
  fprintf(stderr, "ostfs: mounted %s (%s)\n", co.mountpoint,
          G.own_mount ? "own mount: parallel direct writes" : "libfuse mount: direct writes serialized per file");
  if (fuse_daemonize(co.foreground) != 0) goto out_unmount;
  struct fuse_session *se = fuse_get_session(f);
  if (fuse_set_signal_handlers(se) != 0) goto out_unmount;
  if (co.singlethread) {
    ret = fuse_loop(f);
  } else {
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    if (!lc) goto out_signals;
    fuse_loop_cfg_set_clone_fd(lc, (unsigned)co.clone_fd);
    if (co.max_idle_threads != UINT_MAX) fuse_loop_cfg_set_idle_threads(lc, co.max_idle_threads);
    fuse_loop_cfg_set_max_threads(lc, co.max_threads > MIN_THREADS ? co.max_threads : MIN_THREADS);
    ret = fuse_loop_mt(f, lc);
    fuse_loop_cfg_destroy(lc);
  }
  /* libfuse reports the signal that ended the loop */
  ret = (ret == 0 || ret == SIGTERM || ret == SIGINT || ret == SIGHUP) ? 0 : 1;
out_signals:
  fuse_remove_signal_handlers(se);
out_unmount:
  if (G.own_mount) { /* after an external unmount: EINVAL */
    if (umount2(co.mountpoint, 0) != 0 && errno == EBUSY) umount2(co.mountpoint, MNT_DETACH);
  } else {
    fuse_unmount(f);
  }
out_destroy:
  fuse_destroy(f);
out_args:
  fuse_opt_free_args(&args);
  free(co.mountpoint);
  fprintf(stderr, "ostfs: exit %d\n", ret);
  return ret;
}
