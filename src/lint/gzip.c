/* gzip.c - gzip decompression (zlib's inflate) as a pull source.
 *
 * Layers are streamed through a 64 KiB input buffer: memory is zlib's window plus that buffer,
 * whatever the layer's size. Concatenated gzip members are read as one stream (what `gzip`
 * and pigz may write). Bytes after the end of the last member that are not another member
 * are an error: a digest must never cover data the tar reader did not see. */
#include "healthagg/lint.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IN_BUF (64 * 1024)

struct ha_gzip {
    ha_src in;
    z_stream z;
    bool z_ready;
    bool in_eof;
    bool member_done; /* the last inflate call ended a member */
    uint8_t buf[IN_BUF];
};

ha_gzip *ha_gzip_new(ha_src in)
{
    ha_gzip *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->in = in;
    /* 16 + MAX_WBITS: gzip wrapper only (a zlib or raw stream is not a layer). */
    if (inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK) {
        free(g);
        return NULL;
    }
    g->z_ready = true;
    return g;
}

void ha_gzip_free(ha_gzip *g)
{
    if (!g)
        return;
    if (g->z_ready)
        inflateEnd(&g->z);
    free(g);
}

static int refill(ha_gzip *g, char *err, size_t errlen)
{
    if (g->z.avail_in > 0 || g->in_eof)
        return 0;
    ssize_t r = g->in.read(g->in.ctx, g->buf, sizeof(g->buf), err, errlen);
    if (r < 0)
        return -1;
    if (r == 0)
        g->in_eof = true;
    g->z.next_in = g->buf;
    g->z.avail_in = (uInt)r;
    return 0;
}

static ssize_t gz_read(void *ctx, uint8_t *out, size_t n, char *err, size_t errlen)
{
    ha_gzip *g = ctx;
    if (n > (1u << 30))
        n = 1u << 30;
    for (;;) {
        if (refill(g, err, errlen) != 0)
            return -1;
        if (g->member_done) {
            if (g->z.avail_in == 0 && g->in_eof)
                return 0;
            if (g->z.avail_in == 0)
                continue;
            /* Another member follows (or garbage, which inflate will reject). */
            if (inflateReset(&g->z) != Z_OK) {
                snprintf(err, errlen, "gzip: cannot reset the decompressor");
                return -1;
            }
            g->member_done = false;
        }
        if (g->z.avail_in == 0 && g->in_eof) {
            snprintf(err, errlen, "gzip: the compressed data ends early (truncated layer)");
            return -1;
        }
        g->z.next_out = out;
        g->z.avail_out = (uInt)n;
        int r = inflate(&g->z, Z_NO_FLUSH);
        size_t produced = n - g->z.avail_out;
        if (r == Z_STREAM_END) {
            g->member_done = true;
        } else if (r != Z_OK && !(r == Z_BUF_ERROR && produced == 0)) {
            snprintf(err, errlen, "gzip: %s", g->z.msg ? g->z.msg : "corrupt data");
            return -1;
        }
        if (produced > 0)
            return (ssize_t)produced;
    }
}

ha_src ha_gzip_src(ha_gzip *g)
{
    ha_src s = {gz_read, NULL, g};
    return s;
}
