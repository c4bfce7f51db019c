/* source.c - a byte range of an open file as a pull source, hashed as it is read.
 *
 * A blob inside a tar and a blob that is a whole file are the same thing to the readers above:
 * an offset, a length and a FILE. Each read seeks first, so several segments may share one
 * FILE (the outer tar of an image); the cost is one lseek per 64 KiB read. */
#include "healthagg/lint.h"

#include <errno.h>
#include <string.h>

void ha_segment_init(ha_segment *s, FILE *f, uint64_t off, uint64_t size)
{
    s->f = f;
    s->pos = off;
    s->end = off + size;
    ha_sha256_init(&s->sha);
}

static ssize_t seg_read(void *ctx, uint8_t *buf, size_t n, char *err, size_t errlen)
{
    ha_segment *s = ctx;
    if (s->pos >= s->end)
        return 0;
    if (n > s->end - s->pos)
        n = (size_t)(s->end - s->pos);
    if (fseeko(s->f, (off_t)s->pos, SEEK_SET) != 0) {
        snprintf(err, errlen, "seek: %s", strerror(errno));
        return -1;
    }
    size_t got = fread(buf, 1, n, s->f);
    if (got == 0) {
        snprintf(err, errlen, "%s at byte %llu",
                 ferror(s->f) ? strerror(errno) : "the file ends early (truncated)",
                 (unsigned long long)s->pos);
        return -1;
    }
    ha_sha256_update(&s->sha, buf, got);
    s->pos += got;
    return (ssize_t)got;
}

ha_src ha_segment_src(ha_segment *s)
{
    ha_src src = {seg_read, NULL, s};
    return src;
}
