/* fuzz_image.c - libFuzzer target for lint's image reader (src/lint/: tar.c, gzip.c, fsview.c,
 * image.c).
 *
 * Per input:
 *   1. The bytes as one layer (plain tar, or gzip when they start with its magic) applied to a
 *      fresh path index, then lookups that follow symlinks (/bin/sh, a PATH walk, the root,
 *      "..") - truncation, huge sizes, bad checksums, pax/GNU long names, "../" names,
 *      whiteouts and symlink loops all arrive here.
 *   2. The same bytes written to a file and read as a whole image (docker save / OCI tar:
 *      manifest.json or index.json members, digests) with ha_image_load.
 *   3. When cJSON accepts the bytes as JSON: ha_json_line (lint's annotation line numbers) for a
 *      few paths; the line must lie within the text.
 * Invariants: a refusal always carries a message; an accepted lookup returns a node that is
 * never a symlink; every allocation is released (LeakSanitizer). */
#include "healthagg/lint.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct membuf {
    const uint8_t *p;
    size_t n, off;
} membuf;

static ssize_t mem_read(void *ctx, uint8_t *buf, size_t n, char *err, size_t errlen)
{
    membuf *m = ctx;
    (void)err;
    (void)errlen;
    size_t k = m->n - m->off < n ? m->n - m->off : n;
    /* Short reads on purpose: the readers must not assume full blocks. */
    if (k > 777)
        k = 777;
    memcpy(buf, m->p + m->off, k);
    m->off += k;
    return (ssize_t)k;
}

static void need_msg(const char *err, const char *what)
{
    if (!err[0]) {
        fprintf(stderr, "fuzz_image: %s failed without a message\n", what);
        abort();
    }
}

static void lookups(const ha_fsview *v)
{
    static const char *const paths[] = {"/bin/sh", "/usr/bin/curl",     "/",     "/..",
                                        "/a/../b", "/bin/../../bin/sh", "/x/y/z"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        ha_fs_lookup lk;
        ha_fs_resolve(v, paths[i], &lk);
        if (lk.status == HA_FS_FOUND && (!lk.node || lk.node->type == HA_FS_SYMLINK)) {
            fprintf(stderr, "fuzz_image: %s resolved to a symlink\n", paths[i]);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. One layer. */
    ha_fsview v;
    if (ha_fs_init(&v) != 0)
        return 0;
    v.max_nodes = 4096;
    membuf m = {data, size, 0};
    ha_src src = {mem_read, NULL, &m};
    char err[HA_LINT_ERR] = "", hex[65];
    if (ha_image_apply_layer(&v, src, 1, hex, err, sizeof(err)) != 0)
        need_msg(err, "ha_image_apply_layer");
    lookups(&v);
    ha_fs_free(&v);

    /* 2. A whole image archive. */
    char path[] = "/tmp/fuzz_image.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    ha_image img;
    err[0] = '\0';
    if (ha_image_load(path, "linux/amd64", &img, err, sizeof(err)) == 0) {
        lookups(&img.fs);
        ha_image_free(&img);
    } else {
        need_msg(err, "ha_image_load");
    }
    unlink(path);

    /* 3. Line numbers of JSON paths. */
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (j) {
        unsigned lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        static const char *const jp[] = {"containerDefinitions[0].healthCheck.command", "a.b[3]",
                                         "[0]", ""};
        for (size_t i = 0; i < sizeof(jp) / sizeof(jp[0]); i++) {
            unsigned l = ha_json_line((const char *)data, size, jp[i]);
            if (l > lines) {
                fprintf(stderr, "fuzz_image: line %u beyond the text's %u lines\n", l, lines);
                abort();
            }
        }
        cJSON_Delete(j);
    }
    return 0;
}
