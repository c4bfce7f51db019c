/* lint.h - `healthagg lint`: task-definition rules and the container-image reader behind them.
 *
 * The pieces, one file each under src/lint/: a byte source chain (file segment -> gzip ->
 * tar) that streams a layer without ever writing it to disk (tar.c, gzip.c, sha256.c); the
 * merged path index of an image's layers with symlink resolution inside the image root
 * (fsview.c); the image layouts (docker save, ko/crane tarballs, OCI directory or tar) that
 * feed it (image.c); the rules over a task definition (rules.c); and the command with its
 * output formats (lint.c). Memory is bounded by the path index, never by layer sizes. */
#ifndef HEALTHAGG_LINT_H
#define HEALTHAGG_LINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define HA_LINT_ERR 512

/* ---- sha256.c: FIPS 180-4 SHA-256, for blob and layer digests ---- */
typedef struct ha_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
} ha_sha256;
void ha_sha256_init(ha_sha256 *s);
void ha_sha256_update(ha_sha256 *s, const void *data, size_t n);
/* Writes 64 lowercase hex digits and a NUL into hex[65]. */
void ha_sha256_hex(ha_sha256 *s, char hex[65]);

/* ---- a pull byte source: read up to n bytes; 0 at the end, -1 with err filled ---- */
typedef struct ha_src {
    ssize_t (*read)(void *ctx, uint8_t *buf, size_t n, char *err, size_t errlen);
    /* optional: skip n bytes cheaply (seek); NULL means read and discard */
    int (*skip)(void *ctx, uint64_t n, char *err, size_t errlen);
    void *ctx;
} ha_src;

/* A byte range of an open file (a blob inside a tar, or a whole file), hashed as it is read. */
typedef struct ha_segment {
    FILE *f;
    uint64_t pos, end;
    ha_sha256 sha;
} ha_segment;
void ha_segment_init(ha_segment *s, FILE *f, uint64_t off, uint64_t size);
ha_src ha_segment_src(ha_segment *s);

/* ---- gzip.c: gzip (zlib) decompression as a byte source, hashing what it produces ---- */
typedef struct ha_gzip ha_gzip;
/* Returns NULL when out of memory. The input must outlive the stream. */
ha_gzip *ha_gzip_new(ha_src in);
void ha_gzip_free(ha_gzip *g);
ha_src ha_gzip_src(ha_gzip *g);

/* ---- tar.c: a streaming tar reader (ustar, pax x/g headers, GNU L/K long names) ---- */
#define HA_TAR_NAME_MAX 4096
typedef enum {
    HA_TAR_FILE,
    HA_TAR_HARDLINK,
    HA_TAR_SYMLINK,
    HA_TAR_DIR,
    HA_TAR_OTHER, /* devices, fifos: present in the view, never executable */
} ha_tar_type;
typedef struct ha_tar_entry {
    char name[HA_TAR_NAME_MAX];
    char linkname[HA_TAR_NAME_MAX];
    ha_tar_type type;
    unsigned mode;
    uint64_t size;        /* bytes of data */
    uint64_t data_offset; /* where the data starts in the tar stream */
} ha_tar_entry;
typedef struct ha_tar {
    ha_src src;
    uint64_t offset;    /* bytes consumed from src */
    uint64_t data_left; /* of the current entry, padding included */
    uint64_t data_size; /* of the current entry, unread data bytes */
    ha_tar_entry ent;
    bool done;
    char err[HA_LINT_ERR];
} ha_tar;
void ha_tar_init(ha_tar *t, ha_src src);
/* 1: *out is the next entry (its data may be read with ha_tar_read, or is skipped by the next
 * call); 0: end of archive; -1: error in t->err. */
int ha_tar_next(ha_tar *t, const ha_tar_entry **out);
/* Reads the current entry's data; returns bytes (0 at its end) or -1. */
ssize_t ha_tar_read(ha_tar *t, void *buf, size_t n);
/* After the end of the archive: reads what follows up to the end of the stream (so that a
 * digest covers every byte). Returns 0 or -1. */
int ha_tar_drain(ha_tar *t);

/* ---- fsview.c: the merged filesystem of an image, as a path index ---- */
typedef enum { HA_FS_DIR, HA_FS_FILE, HA_FS_SYMLINK, HA_FS_OTHER } ha_fs_type;
typedef struct ha_fs_node ha_fs_node;
struct ha_fs_node {
    ha_fs_node *parent, *child, *next, *prev; /* the tree */
    ha_fs_node *hnext;                        /* hash chain, keyed by (parent, name) */
    char *name;                               /* one component; owned */
    char *target;                             /* symlink target; owned */
    unsigned mode;
    unsigned layer;
    ha_fs_type type;
};
typedef struct ha_fsview {
    ha_fs_node root;
    ha_fs_node **buckets;
    size_t nbuckets, count, max_nodes;
} ha_fsview;
int ha_fs_init(ha_fsview *v);
void ha_fs_free(ha_fsview *v);
/* Normalises a tar member name to "a/b/c" (no leading slash, no "." or empty components);
 * -1 with err when ".." would leave the root or the name is empty or too long. */
int ha_fs_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen);
/* Applies one tar entry of layer `layer` (1-based, in order): whiteouts and opaque markers
 * hide lower layers, hard links copy their target, everything else is added or replaced. */
int ha_fs_apply(ha_fsview *v, const ha_tar_entry *e, unsigned layer, char *err, size_t errlen);
typedef enum {
    HA_FS_FOUND,
    HA_FS_MISSING, /* a component does not exist (missing names it) */
    HA_FS_NOTDIR,  /* a component that should be a directory is not */
    HA_FS_LOOP,    /* more than 40 symlinks */
} ha_fs_status;
typedef struct ha_fs_lookup {
    ha_fs_status status;
    const ha_fs_node *node; /* HA_FS_FOUND: never a symlink */
    char missing[1024];     /* HA_FS_MISSING / NOTDIR: the path that is not there */
    char via[1024];         /* the first symlink followed, "" if none: "/bin/sh -> bash" */
    char resolved[1024];    /* HA_FS_FOUND: the final path */
} ha_fs_lookup;
/* Resolves an absolute path inside the image root, following every symlink (absolute ones
 * from the image root, ".." stopping at the root). */
void ha_fs_resolve(const ha_fsview *v, const char *path, ha_fs_lookup *out);

/* ---- image.c: an image's layers, config and merged view ---- */
typedef struct ha_image {
    ha_fsview fs;
    char *path_env;          /* PATH from the image config's Env, or NULL; owned */
    char *healthcheck;       /* the config's Healthcheck.Test as text, or NULL; owned */
    char kind[48];           /* "docker save tarball", "OCI layout directory", ... */
    char platform[64];       /* e.g. "linux/amd64" */
    char platform_note[256]; /* set when an index offered several platforms */
    unsigned layers;
} ha_image;
/* Reads PATH (a docker-save/ko/crane tarball, an OCI layout directory or tar), verifying
 * digests, selecting `platform` ("os/arch[/variant]") from an image index. 0, or -1 with err. */
int ha_image_load(const char *path, const char *platform, ha_image *img, char *err, size_t errlen);
void ha_image_free(ha_image *img);
/* Applies one layer stream (gzip or plain tar, told apart by their first bytes; zstd is
 * refused) to a view, reading it to its end. diff_hex receives the sha256 of the tar. */
int ha_image_apply_layer(ha_fsview *v, ha_src raw, unsigned layer, char diff_hex[65], char *err,
                         size_t errlen);

/* ---- rules.c / lint.c ---- */
typedef enum { HA_SEV_WARNING, HA_SEV_ERROR } ha_severity;
typedef struct ha_finding {
    ha_severity sev;
    char rule[40];
    char path[256];
    char message[1024];
    char fix[512];
} ha_finding;
typedef struct ha_findings {
    ha_finding *v;
    size_t n, cap;
    bool oom;
} ha_findings;
void ha_findings_add(ha_findings *f, ha_severity sev, const char *rule, const char *path,
                     const char *fix, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void ha_findings_free(ha_findings *f);

/* An image given with --image for the container of that name. */
typedef struct ha_lint_image {
    const char *container;
    const char *path;
    ha_image img;
    bool loaded;
    bool used;
} ha_lint_image;

/* Runs every rule over one parsed task definition (the cJSON root, either shape). */
struct cJSON;
void ha_lint_taskdef(const struct cJSON *root, ha_lint_image *images, size_t nimages,
                     ha_findings *out);

/* jsonline.c: the 1-based line of the value at `path` ("a.b[2].c") in a JSON text cJSON has
 * accepted, or of its nearest existing parent; 0 when not even the root is there. */
unsigned ha_json_line(const char *text, size_t len, const char *path);

int ha_cmd_lint(int argc, char **argv);

#endif
