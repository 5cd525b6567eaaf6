/* The layout format of the liblustreapi test double and of the OST-emulating FUSE file system.
 *
 * Test code only: real Lustre keeps layouts in lov_user_md (the lustre.lov xattr); the double
 * keeps its own text in the xattr "trusted.lov" (the name real Lustre also answers to, so that
 * stripemover's copier skips it like any Lustre-internal xattr). One line per component:
 *
 *   <start> <end|eof> <pattern> <stripe_size> <stripe_count> <flags> <pool|-> <ost,ost,...|->
 *
 * numbers in decimal; pattern 0 RAID0, 2 MDT (data on MDT), 4 OVERSTRIPING; flags as Lustre's
 * lcme_flags (0x10 = LCME_FL_INIT: instantiated, OST list present); "-" for no pool or for the
 * OSTs of a component not instantiated yet. The first line is "plain" or "composite".
 */
#ifndef STRIPEMOVER_LAYOUT_TEXT_H
#define STRIPEMOVER_LAYOUT_TEXT_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LT_XATTR "trusted.lov"
#define LT_MAX_COMPS 16
#define LT_MAX_STRIPES 256
#define LT_EOF UINT64_MAX
#define LT_FL_INIT 0x10u

struct lt_comp {
  uint64_t start, end; /* end = LT_EOF: to the end of the file */
  uint64_t pattern, stripe_size, stripe_count;
  uint32_t flags;
  char pool[16];
  int n_osts; /* 0 when not instantiated */
  uint32_t osts[LT_MAX_STRIPES];
};

struct lt_layout {
  int composite;
  int n_comps;
  struct lt_comp comps[LT_MAX_COMPS];
};

/* Parses text (NUL-terminated); 0, or -EINVAL. */
static inline int lt_parse(const char *text, struct lt_layout *out) {
  memset(out, 0, sizeof *out);
  const char *p = text;
  if (strncmp(p, "plain\n", 6) == 0) {
    p += 6;
  } else if (strncmp(p, "composite\n", 10) == 0) {
    out->composite = 1;
    p += 10;
  } else {
    return -EINVAL;
  }
  while (*p != '\0') {
    if (out->n_comps == LT_MAX_COMPS) return -EINVAL;
    struct lt_comp *c = &out->comps[out->n_comps];
    char end[32], pool[32], osts[LT_MAX_STRIPES * 8];
    unsigned long long start, pattern, size, count;
    unsigned flags;
    int used = 0;
    if (sscanf(p, "%llu %31s %llu %llu %llu %u %31s %2047s%n", &start, end, &pattern, &size, &count, &flags, pool,
               osts, &used) != 8)
      return -EINVAL;
    p += used;
    if (*p == '\n') p++;
    c->start = start;
    if (strcmp(end, "eof") == 0) {
      c->end = LT_EOF;
    } else {
      char *rest;
      c->end = strtoull(end, &rest, 10);
      if (end[0] < '0' || end[0] > '9' || *rest != '\0') return -EINVAL;
    }
    c->pattern = pattern;
    c->stripe_size = size;
    c->stripe_count = count;
    c->flags = flags;
    if (strlen(pool) >= sizeof c->pool) return -EINVAL;
    strcpy(c->pool, strcmp(pool, "-") == 0 ? "" : pool);
    if (strcmp(osts, "-") != 0) {
      for (char *s = osts; *s != '\0';) {
        if (c->n_osts == LT_MAX_STRIPES) return -EINVAL;
        char *next;
        if (*s < '0' || *s > '9') return -EINVAL;
        unsigned long ost = strtoul(s, &next, 10);
        if (ost > UINT32_MAX) return -EINVAL;
        c->osts[c->n_osts++] = (uint32_t)ost;
        s = *next == ',' ? next + 1 : next;
      }
    }
    out->n_comps++;
  }
  return out->n_comps > 0 ? 0 : -EINVAL;
}

/* Writes the text of l into buf; returns its length, or -ERANGE if buf is too small. */
static inline int lt_format(const struct lt_layout *l, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "%s\n", l->composite ? "composite" : "plain");
  for (int i = 0; i < l->n_comps && n < len; i++) {
    const struct lt_comp *c = &l->comps[i];
    char end[32];
    if (c->end == LT_EOF)
      strcpy(end, "eof");
    else
      snprintf(end, sizeof end, "%llu", (unsigned long long)c->end);
    n += (size_t)snprintf(buf + n, len - n, "%llu %s %llu %llu %llu %u %s ", (unsigned long long)c->start, end,
                          (unsigned long long)c->pattern, (unsigned long long)c->stripe_size,
                          (unsigned long long)c->stripe_count, c->flags, c->pool[0] ? c->pool : "-");
    if (c->n_osts == 0 && n < len) n += (size_t)snprintf(buf + n, len - n, "-");
    for (int k = 0; k < c->n_osts && n < len; k++)
      n += (size_t)snprintf(buf + n, len - n, k ? ",%u" : "%u", c->osts[k]);
    if (n < len) n += (size_t)snprintf(buf + n, len - n, "\n");
  }
  return n < len ? (int)n : -ERANGE;
}

#endif
