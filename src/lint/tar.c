/* tar.c - a streaming tar reader: ustar headers, pax extended headers (x per entry, g global),
 * GNU long names and long link names (L, K), base-256 sizes.
 *
 * It pulls 512-byte blocks from a source and never seeks back, so the same code reads the outer
 * tar of an image (with a seeking skip) and a layer coming out of gzip (skip = read and drop).
 * Trade-off: only the keys lint needs are honoured (path, linkpath, size); the rest of a pax
 * record is parsed for well-formedness and dropped. Names are returned raw; callers normalise
 * them (ha_fs_normalize), which is where "../" is refused. */
#include "healthagg/lint.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 512
#define PAX_MAX (1024 * 1024) /* a pax or GNU long-name payload we are willing to hold */

static int fail(ha_tar *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(ha_tar *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof(t->err), fmt, ap);
    va_end(ap);
    return -1;
}

void ha_tar_init(ha_tar *t, ha_src src)
{
    memset(t, 0, sizeof(*t));
    t->src = src;
}

/* Reads exactly n bytes; 1 ok, 0 clean end before any byte, -1 error or short read. */
static int read_full(ha_tar *t, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        char e[256] = "";
        ssize_t r = t->src.read(t->src.ctx, buf + got, n - got, e, sizeof(e));
        if (r < 0)
            return fail(t, "%s", e);
        if (r == 0) {
            if (got == 0)
                return 0;
            return fail(t, "the archive ends in the middle of a block at byte %llu (truncated)",
                        (unsigned long long)(t->offset + got));
        }
        got += (size_t)r;
    }
    t->offset += n;
    return 1;
}

static int skip(ha_tar *t, uint64_t n)
{
    if (n == 0)
        return 0;
    if (t->src.skip) {
        char e[256] = "";
        if (t->src.skip(t->src.ctx, n, e, sizeof(e)) != 0)
            return fail(t, "%s", e);
        t->offset += n;
        return 0;
    }
    uint8_t buf[4096];
    while (n > 0) {
        size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
        int r = read_full(t, buf, k);
        if (r <= 0)
            return r == 0 ? fail(t, "the archive ends inside an entry (truncated)") : -1;
        n -= k;
    }
    return 0;
}

/* Octal (space/NUL padded) or base-256 (high bit of the first byte). */
static int parse_num(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (p[0] & 0x80) {
        if (p[0] & 0x40)
            return -1; /* negative */
        v = p[0] & 0x3f;
        for (size_t i = 1; i < n; i++) {
            if (v >> 55)
                return -1;
            v = v << 8 | p[i];
        }
        *out = v;
        return 0;
    }
    size_t i = 0;
    while (i < n && p[i] == ' ')
        i++;
    bool any = false;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
        if (v >> 60)
            return -1;
        v = v << 3 | (uint64_t)(p[i] - '0');
        any = true;
    }
    for (; i < n; i++)
        if (p[i] != ' ' && p[i] != '\0')
            return -1;
    *out = any ? v : 0;
    return 0;
}

static bool all_zero(const uint8_t *b)
{
    for (int i = 0; i < BLOCK; i++)
        if (b[i])
            return false;
    return true;
}

static void copy_field(char *dst, size_t dstlen, const uint8_t *src, size_t n)
{
    size_t k = 0;
    while (k < n && src[k])
        k++;
    if (k >= dstlen)
        k = dstlen - 1;
    memcpy(dst, src, k);
    dst[k] = '\0';
}

/* Reads an entry's payload (pax record, GNU long name) into a NUL-terminated heap buffer. */
static int read_payload(ha_tar *t, uint64_t size, char **out)
{
    if (size > PAX_MAX)
        return fail(t, "an extended header of %llu bytes at byte %llu is larger than %d",
                    (unsigned long long)size, (unsigned long long)t->offset, PAX_MAX);
    uint64_t padded = (size + BLOCK - 1) / BLOCK * BLOCK;
    char *buf = malloc((size_t)padded + 1);
    if (!buf)
        return fail(t, "out of memory");
    int r = padded ? read_full(t, (uint8_t *)buf, (size_t)padded) : 1;
    if (r <= 0) {
        free(buf);
        return r == 0 ? fail(t, "the archive ends inside an extended header (truncated)") : -1;
    }
    buf[size] = '\0';
    *out = buf;
    return 0;
}

typedef struct pending {
    char *path, *linkpath; /* from pax x or GNU L/K; owned */
    bool has_size;
    uint64_t size;
} pending;

static void pending_free(pending *p)
{
    free(p->path);
    free(p->linkpath);
    memset(p, 0, sizeof(*p));
}

/* "LEN key=value\n" records. Only path, linkpath and size matter to us. */
static int parse_pax(ha_tar *t, const char *buf, size_t len, pending *p, bool global)
{
    size_t off = 0;
    while (off < len) {
        if (buf[off] == '\0')
            break; /* some writers pad with NULs */
        size_t reclen = 0, i = off;
        while (i < len && buf[i] >= '0' && buf[i] <= '9' && reclen < PAX_MAX) {
            reclen = reclen * 10 + (size_t)(buf[i] - '0');
            i++;
        }
        if (i >= len || buf[i] != ' ' || reclen == 0 || reclen > len - off ||
            buf[off + reclen - 1] != '\n')
            return fail(t, "a malformed pax extended header record at byte %llu",
                        (unsigned long long)t->offset);
        const char *kv = buf + i + 1, *end = buf + off + reclen - 1;
        const char *eq = memchr(kv, '=', (size_t)(end - kv));
        if (!eq)
            return fail(t, "a pax record without '=' at byte %llu", (unsigned long long)t->offset);
        size_t klen = (size_t)(eq - kv), vlen = (size_t)(end - eq - 1);
        if (!global) {
            char **slot = NULL;
            if (klen == 4 && memcmp(kv, "path", 4) == 0)
                slot = &p->path;
            else if (klen == 8 && memcmp(kv, "linkpath", 8) == 0)
                slot = &p->linkpath;
            if (slot) {
                if (vlen >= HA_TAR_NAME_MAX || memchr(eq + 1, '\0', vlen))
                    return fail(t, "a pax %.*s longer than %d bytes or holding NUL", (int)klen, kv,
                                HA_TAR_NAME_MAX - 1);
                free(*slot);
                *slot = malloc(vlen + 1);
                if (!*slot)
                    return fail(t, "out of memory");
                memcpy(*slot, eq + 1, vlen);
                (*slot)[vlen] = '\0';
            } else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
                uint64_t v = 0;
                if (vlen == 0 || vlen > 19)
                    return fail(t, "a pax size that is not a number");
                for (size_t k = 0; k < vlen; k++) {
                    char c = eq[1 + k];
                    if (c < '0' || c > '9')
                        return fail(t, "a pax size that is not a number");
                    v = v * 10 + (uint64_t)(c - '0');
                }
                p->has_size = true;
                p->size = v;
            }
        }
        off += reclen;
    }
    return 0;
}

int ha_tar_next(ha_tar *t, const ha_tar_entry **out)
{
    if (t->done)
        return 0;
    if (skip(t, t->data_left) != 0)
        return -1;
    t->data_left = t->data_size = 0;
    pending p = {0};
    uint8_t b[BLOCK];
    for (;;) {
        int r = read_full(t, b, BLOCK);
        if (r < 0)
            goto err;
        if (r == 0 || all_zero(b)) {
            /* End of archive: one or two zero blocks, or a clean end of stream. */
            if (p.path || p.linkpath || p.has_size) {
                fail(t, "the archive ends after an extended header with no entry");
                goto err;
            }
            t->done = true;
            return 0;
        }
        unsigned sum = 0;
        for (int i = 0; i < BLOCK; i++)
            sum += (i >= 148 && i < 156) ? ' ' : b[i];
        uint64_t want;
        if (parse_num(b + 148, 8, &want) != 0 || want != sum) {
            fail(t,
                 "not a tar header at byte %llu (bad checksum): the file is not a tar "
                 "archive, or it is corrupt",
                 (unsigned long long)(t->offset - BLOCK));
            goto err;
        }
        uint64_t size, mode;
        if (parse_num(b + 124, 12, &size) != 0 || parse_num(b + 100, 8, &mode) != 0) {
            fail(t, "a bad size or mode field at byte %llu",
                 (unsigned long long)(t->offset - BLOCK));
            goto err;
        }
        char type = (char)b[156];
        if (type == 'x' || type == 'g') {
            char *buf;
            if (read_payload(t, size, &buf) != 0)
                goto err;
            int pr = parse_pax(t, buf, (size_t)size, &p, type == 'g');
            free(buf);
            if (pr != 0)
                goto err;
            continue;
        }
        if (type == 'L' || type == 'K') {
            char *buf;
            if (size == 0 || size >= HA_TAR_NAME_MAX) {
                fail(t, "a GNU long name of %llu bytes (limit %d)", (unsigned long long)size,
                     HA_TAR_NAME_MAX - 1);
                goto err;
            }
            if (read_payload(t, size, &buf) != 0)
                goto err;
            char **slot = type == 'L' ? &p.path : &p.linkpath;
            free(*slot);
            *slot = buf;
            continue;
        }
        ha_tar_entry *e = &t->ent;
        if (p.path) {
            snprintf(e->name, sizeof(e->name), "%s", p.path);
        } else {
            char name[101], prefix[156];
            copy_field(name, sizeof(name), b, 100);
            prefix[0] = '\0';
            if (memcmp(b + 257, "ustar", 5) == 0)
                copy_field(prefix, sizeof(prefix), b + 345, 155);
            snprintf(e->name, sizeof(e->name), "%s%s%s", prefix, prefix[0] ? "/" : "", name);
        }
        if (p.linkpath)
            snprintf(e->linkname, sizeof(e->linkname), "%s", p.linkpath);
        else
            copy_field(e->linkname, sizeof(e->linkname), b + 157, 100);
        if (p.has_size)
            size = p.size;
        switch (type) {
        case '0':
        case '\0':
        case '7':
            e->type = HA_TAR_FILE;
            break;
        case '1':
            e->type = HA_TAR_HARDLINK;
            break;
        case '2':
            e->type = HA_TAR_SYMLINK;
            break;
        case '5':
            e->type = HA_TAR_DIR;
            break;
        default:
            e->type = HA_TAR_OTHER;
            break;
        }
        /* Old tars mark directories with a trailing slash on a regular-file type. */
        size_t nl = strlen(e->name);
        if (e->type == HA_TAR_FILE && nl > 0 && e->name[nl - 1] == '/')
            e->type = HA_TAR_DIR;
        /* Links, directories and devices carry no data, whatever the size field says. */
        if (e->type == HA_TAR_HARDLINK || e->type == HA_TAR_SYMLINK || e->type == HA_TAR_DIR ||
            (e->type == HA_TAR_OTHER && (type == '3' || type == '4' || type == '6')))
            size = 0;
        if (size > UINT64_MAX - BLOCK) {
            fail(t, "an entry size of %llu bytes", (unsigned long long)size);
            goto err;
        }
        e->mode = (unsigned)(mode & 07777);
        e->size = size;
        e->data_offset = t->offset;
        t->data_size = size;
        t->data_left = (size + BLOCK - 1) / BLOCK * BLOCK;
        pending_free(&p);
        *out = e;
        return 1;
    }
err:
    pending_free(&p);
    return -1;
}

ssize_t ha_tar_read(ha_tar *t, void *buf, size_t n)
{
    if (t->data_size == 0)
        return 0;
    if (n > t->data_size)
        n = (size_t)t->data_size;
    int r = read_full(t, buf, n);
    if (r <= 0)
        return r == 0 ? fail(t, "the archive ends inside an entry (truncated)") : -1;
    t->data_size -= n;
    t->data_left -= n;
    return (ssize_t)n;
}

int ha_tar_drain(ha_tar *t)
{
    uint8_t buf[4096];
    for (;;) {
        char e[256] = "";
        ssize_t r = t->src.read(t->src.ctx, buf, sizeof(buf), e, sizeof(e));
        if (r < 0)
            return fail(t, "%s", e);
        if (r == 0)
            return 0;
        t->offset += (uint64_t)r;
    }
}
