/* image.c - container images as lint reads them: the layouts real tools write, their
 * manifests, digests and the merged filesystem of their layers.
 *
 * Layouts: a `docker save` tarball (manifest.json, `<id>/layer.tar`), what ko and crane write
 * (manifest.json with `Config: "sha256:..."` and `<digest>.tar.gz` layers), and OCI image
 * layouts (index.json + blobs/sha256/...) as a directory or a tar, where index.json may point
 * to an image index of per-platform manifests. Every blob is streamed once from its place in
 * the file: the archive is indexed (names, offsets) without reading data, then each layer is
 * hashed, decompressed and applied to the path index as it streams. Nothing is extracted.
 * Trade-off: an outer tarball that is itself compressed (`docker save | gzip`) is refused with
 * the fix, because indexing it would mean decompressing it twice. */
#include "healthagg/lint.h"

#include <cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SMALL_MAX (8 * 1024 * 1024) /* manifests and configs */
#define MAX_MEMBERS 200000
#define MAX_INDEX_DEPTH 4

static int errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------------------------------------------
 * The archive: a tar file indexed once, or a directory.
 * ------------------------------------------------------------------------------------------ */
typedef struct member {
    char *name;
    char *link; /* a symlink or hard link member: the member it stands for; owned */
    uint64_t off, size;
} member;

typedef struct archive {
    const char *path;
    bool is_dir;
    FILE *f;
    member *m;
    size_t n, cap;
} archive;

typedef struct filesrc {
    FILE *f;
    uint64_t pos;
} filesrc;

static ssize_t file_read(void *ctx, uint8_t *buf, size_t n, char *err, size_t errlen)
{
    filesrc *s = ctx;
    if (fseeko(s->f, (off_t)s->pos, SEEK_SET) != 0)
        return errf(err, errlen, "seek: %s", strerror(errno));
    size_t got = fread(buf, 1, n, s->f);
    if (got == 0 && ferror(s->f))
        return errf(err, errlen, "read: %s", strerror(errno));
    s->pos += got;
    return (ssize_t)got;
}

static int file_skip(void *ctx, uint64_t n, char *err, size_t errlen)
{
    filesrc *s = ctx;
    s->pos += n;
    (void)err;
    (void)errlen;
    return 0;
}

static void archive_close(archive *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->m[i].name);
        free(a->m[i].link);
    }
    free(a->m);
    if (a->f)
        fclose(a->f);
    memset(a, 0, sizeof(*a));
}

static int archive_index(archive *a, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fileno(a->f), &st) != 0)
        return errf(err, errlen, "stat: %s", strerror(errno));
    uint8_t magic[4] = {0};
    size_t got = fread(magic, 1, sizeof(magic), a->f);
    if (got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b)
        return errf(err, errlen,
                    "the file is gzip-compressed; lint reads the tarball itself: gunzip it first "
                    "(docker save and ko build --tarball write it uncompressed)");
    filesrc fs = {a->f, 0};
    ha_tar *t = malloc(sizeof(*t));
    if (!t)
        return errf(err, errlen, "out of memory");
    ha_src src = {file_read, file_skip, &fs};
    ha_tar_init(t, src);
    int rc = -1;
    for (;;) {
        const ha_tar_entry *e;
        int r = ha_tar_next(t, &e);
        if (r < 0) {
            errf(err, errlen, "%s", t->err);
            goto out;
        }
        if (r == 0)
            break;
        if (e->data_offset + e->size > (uint64_t)st.st_size) {
            errf(err, errlen,
                 "member %.200s claims %llu bytes but the file ends before (truncated)", e->name,
                 (unsigned long long)e->size);
            goto out;
        }
        if (e->type != HA_TAR_FILE && e->type != HA_TAR_SYMLINK && e->type != HA_TAR_HARDLINK)
            continue;
        char norm[HA_TAR_NAME_MAX], e2[HA_LINT_ERR], link[HA_TAR_NAME_MAX] = "";
        if (ha_fs_normalize(e->name, norm, sizeof(norm), e2, sizeof(e2)) != 0) {
            errf(err, errlen, "member %s", e2);
            goto out;
        }
        /* docker save stores a layer that appears twice once, and links the other name to it
         * (`<id>/layer.tar -> ../<other id>/layer.tar`). */
        if (e->type != HA_TAR_FILE) {
            char joined[2 * HA_TAR_NAME_MAX];
            const char *slash = strrchr(norm, '/');
            if (e->type == HA_TAR_SYMLINK && e->linkname[0] != '/' && slash)
                errf(joined, sizeof(joined), "%.*s/%s", (int)(slash - norm), norm, e->linkname);
            else
                errf(joined, sizeof(joined), "%s", e->linkname);
            if (ha_fs_normalize(joined, link, sizeof(link), e2, sizeof(e2)) != 0) {
                errf(err, errlen, "member %.200s links to %s", norm, e2);
                goto out;
            }
        }
        if (a->n == MAX_MEMBERS) {
            errf(err, errlen, "more than %d members: not an image archive", MAX_MEMBERS);
            goto out;
        }
        if (a->n == a->cap) {
            size_t nc = a->cap ? a->cap * 2 : 32;
            member *m = realloc(a->m, nc * sizeof(*m));
            if (!m) {
                errf(err, errlen, "out of memory");
                goto out;
            }
            a->m = m;
            a->cap = nc;
        }
        a->m[a->n].link = NULL;
        if (!(a->m[a->n].name = strdup(norm)) || (link[0] && !(a->m[a->n].link = strdup(link)))) {
            free(a->m[a->n].name);
            errf(err, errlen, "out of memory");
            goto out;
        }
        a->m[a->n].off = e->data_offset;
        a->m[a->n].size = e->size;
        a->n++;
    }
    rc = 0;
out:
    free(t);
    return rc;
}

static int archive_open(archive *a, const char *path, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->path = path;
    struct stat st;
    if (stat(path, &st) != 0)
        return errf(err, errlen, "cannot open: %s", strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        a->is_dir = true;
        return 0;
    }
    if (!(a->f = fopen(path, "rb")))
        return errf(err, errlen, "cannot open: %s", strerror(errno));
    return archive_index(a, err, errlen);
}

/* Finds `name` (a normalised relative path). Returns 1 with a FILE positioned by the caller
 * (owned when *owned), 0 when absent, -1 on error. */
static int archive_find(archive *a, const char *name, FILE **f, uint64_t *off, uint64_t *size,
                        bool *owned, char *err, size_t errlen)
{
    char norm[HA_TAR_NAME_MAX], e2[HA_LINT_ERR];
    if (ha_fs_normalize(name, norm, sizeof(norm), e2, sizeof(e2)) != 0)
        return errf(err, errlen, "%s", e2);
    if (a->is_dir) {
        char full[HA_TAR_NAME_MAX + 1024];
        errf(full, sizeof(full), "%s/%s", a->path, norm);
        struct stat st;
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
            return 0;
        if (!(*f = fopen(full, "rb")))
            return errf(err, errlen, "cannot open %s: %s", full, strerror(errno));
        *off = 0;
        *size = (uint64_t)st.st_size;
        *owned = true;
        return 1;
    }
    /* The last member of a name wins, as when a tar is extracted; links are followed (a few
     * hops: a loop is "missing"). */
    for (int hops = 0; hops < 8; hops++) {
        size_t i = a->n;
        while (i-- > 0 && strcmp(a->m[i].name, norm) != 0)
            ;
        if (i == (size_t)-1)
            return 0;
        if (a->m[i].link) {
            memmove(norm, a->m[i].link, strlen(a->m[i].link) + 1);
            continue;
        }
        *f = a->f;
        *off = a->m[i].off;
        *size = a->m[i].size;
        *owned = false;
        return 1;
    }
    return 0;
}

/* Reads a small member entirely; verifies it against want_hex when given. */
static int read_small(archive *a, const char *name, const char *want_hex, uint64_t want_size,
                      char **out, char *err, size_t errlen)
{
    FILE *f;
    uint64_t off, size;
    bool owned;
    int r = archive_find(a, name, &f, &off, &size, &owned, err, errlen);
    if (r <= 0)
        return r == 0 ? errf(err, errlen, "%.300s is missing", name) : -1;
    int rc = -1;
    char *buf = NULL;
    if (size > SMALL_MAX) {
        errf(err, errlen, "%.300s is %llu bytes, more than a manifest or config may be", name,
             (unsigned long long)size);
        goto out;
    }
    if (want_size != UINT64_MAX && size != want_size) {
        errf(err, errlen, "%.300s is %llu bytes but its descriptor says %llu", name,
             (unsigned long long)size, (unsigned long long)want_size);
        goto out;
    }
    if (!(buf = malloc((size_t)size + 1))) {
        errf(err, errlen, "out of memory");
        goto out;
    }
    ha_segment seg;
    ha_segment_init(&seg, f, off, size);
    ha_src src = ha_segment_src(&seg);
    size_t got = 0;
    while (got < size) {
        ssize_t n = src.read(src.ctx, (uint8_t *)buf + got, (size_t)size - got, err, errlen);
        if (n <= 0) {
            if (n == 0)
                errf(err, errlen, "%.300s ends early", name);
            goto out;
        }
        got += (size_t)n;
    }
    buf[size] = '\0';
    if (want_hex) {
        char hex[65];
        ha_sha256_hex(&seg.sha, hex);
        if (strcmp(hex, want_hex) != 0) {
            errf(err, errlen,
                 "%.300s: content has digest sha256:%s, not the sha256:%s it is named by; "
                 "the image is corrupt or was modified",
                 name, hex, want_hex);
            goto out;
        }
    }
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (owned)
        fclose(f);
    return rc;
}

static cJSON *read_json(archive *a, const char *name, const char *want_hex, uint64_t want_size,
                        char *err, size_t errlen)
{
    char *text;
    if (read_small(a, name, want_hex, want_size, &text, err, errlen) != 0)
        return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j)
        errf(err, errlen, "%.300s is not valid JSON", name);
    return j;
}

/* "sha256:<64 hex>" -> hex; NULL if the digest is not a well-formed sha256 digest. */
static const char *sha256_hex_of(const char *digest)
{
    if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71)
        return NULL;
    for (int i = 7; i < 71; i++)
        if (!strchr("0123456789abcdef", digest[i]))
            return NULL;
    return digest + 7;
}

/* A digest a member's name carries: "sha256:HEX", "HEX.json", "HEX.tar.gz", "HEX.tar",
 * "blobs/sha256/HEX". Docker's "<v1 id>/layer.tar" carries none. */
static bool name_digest(const char *name, char hex[65])
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (strncmp(base, "sha256:", 7) == 0)
        base += 7;
    size_t n = 0;
    while (base[n] && strchr("0123456789abcdef", base[n]))
        n++;
    const char *rest = base + n;
    if (n != 64 || !(*rest == '\0' || strcmp(rest, ".json") == 0 || strcmp(rest, ".tar.gz") == 0 ||
                     strcmp(rest, ".tar") == 0))
        return false;
    memcpy(hex, base, 64);
    hex[64] = '\0';
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Layers
 * ------------------------------------------------------------------------------------------ */
typedef struct prefixed {
    ha_src in;
    uint8_t buf[8];
    size_t n, off;
    ha_sha256 *sha; /* hash of what passes through, or NULL */
} prefixed;

static ssize_t prefixed_read(void *ctx, uint8_t *buf, size_t n, char *err, size_t errlen)
{
    prefixed *p = ctx;
    ssize_t r;
    if (p->off < p->n) {
        size_t k = p->n - p->off < n ? p->n - p->off : n;
        memcpy(buf, p->buf + p->off, k);
        p->off += k;
        r = (ssize_t)k;
    } else {
        r = p->in.read(p->in.ctx, buf, n, err, errlen);
    }
    if (r > 0 && p->sha)
        ha_sha256_update(p->sha, buf, (size_t)r);
    return r;
}

int ha_image_apply_layer(ha_fsview *v, ha_src raw, unsigned layer, char diff_hex[65], char *err,
                         size_t errlen)
{
    prefixed head = {.in = raw};
    while (head.n < 6) {
        ssize_t r = raw.read(raw.ctx, head.buf + head.n, 6 - head.n, err, errlen);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        head.n += (size_t)r;
    }
    const uint8_t *m = head.buf;
    if (head.n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
        return errf(err, errlen,
                    "the layer is zstd-compressed, which lint does not read; build the image "
                    "with gzip layers (the default of docker, ko and crane)");
    if (head.n >= 3 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h')
        return errf(err, errlen, "the layer is bzip2-compressed; lint reads gzip and plain tar");
    if (head.n >= 6 && memcmp(m,
                              "\xfd"
                              "7zXZ\0",
                              6) == 0)
        return errf(err, errlen, "the layer is xz-compressed; lint reads gzip and plain tar");
    ha_sha256 diff;
    ha_sha256_init(&diff);
    ha_gzip *gz = NULL;
    prefixed out = {.sha = &diff};
    if (head.n >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
        if (!(gz = ha_gzip_new((ha_src){prefixed_read, NULL, &head})))
            return errf(err, errlen, "out of memory");
        out.in = ha_gzip_src(gz);
    } else {
        out = head; /* a plain tar: the peeked bytes and the rest, hashed as they pass */
        out.sha = &diff;
    }
    ha_tar *t = malloc(sizeof(*t));
    if (!t) {
        ha_gzip_free(gz);
        return errf(err, errlen, "out of memory");
    }
    ha_tar_init(t, (ha_src){prefixed_read, NULL, &out});
    int rc = -1;
    for (;;) {
        const ha_tar_entry *e;
        int r = ha_tar_next(t, &e);
        if (r < 0) {
            errf(err, errlen, "%s", t->err);
            goto done;
        }
        if (r == 0)
            break;
        if (ha_fs_apply(v, e, layer, err, errlen) != 0)
            goto done;
    }
    if (ha_tar_drain(t) != 0) {
        errf(err, errlen, "%s", t->err);
        goto done;
    }
    if (diff_hex)
        ha_sha256_hex(&diff, diff_hex);
    rc = 0;
done:
    free(t);
    ha_gzip_free(gz);
    return rc;
}

/* Streams layer `i` (1-based) from `name`, checking its blob digest (when known) and its
 * uncompressed digest against the config's rootfs.diff_ids. */
static int load_layer(archive *a, ha_image *img, const char *name, const char *blob_hex,
                      uint64_t want_size, const char *diff_id, unsigned i, char *err, size_t errlen)
{
    FILE *f;
    uint64_t off, size;
    bool owned;
    int r = archive_find(a, name, &f, &off, &size, &owned, err, errlen);
    if (r <= 0)
        return r == 0 ? errf(err, errlen, "layer %u: %.300s is missing", i, name) : -1;
    int rc = -1;
    if (want_size != UINT64_MAX && size != want_size) {
        errf(err, errlen, "layer %u: %.300s is %llu bytes but its descriptor says %llu", i, name,
             (unsigned long long)size, (unsigned long long)want_size);
        goto out;
    }
    ha_segment seg;
    ha_segment_init(&seg, f, off, size);
    char diff_hex[65], e2[HA_LINT_ERR];
    if (ha_image_apply_layer(&img->fs, ha_segment_src(&seg), i, diff_hex, e2, sizeof(e2)) != 0) {
        errf(err, errlen, "layer %u (%.200s): %s", i, name, e2);
        goto out;
    }
    char blob[65];
    ha_sha256_hex(&seg.sha, blob);
    if (blob_hex && strcmp(blob, blob_hex) != 0) {
        errf(err, errlen,
             "layer %u (%.200s): content has digest sha256:%s, not sha256:%s; the image is "
             "corrupt or was modified",
             i, name, blob, blob_hex);
        goto out;
    }
    const char *want_diff = sha256_hex_of(diff_id);
    if (!want_diff) {
        errf(err, errlen,
             "layer %u: the config's rootfs.diff_ids[%u] is missing or not a sha256 "
             "digest",
             i, i - 1);
        goto out;
    }
    if (strcmp(diff_hex, want_diff) != 0) {
        errf(err, errlen,
             "layer %u (%.200s): uncompressed digest sha256:%s does not match the config's "
             "rootfs.diff_ids[%u] %s; the image is corrupt or was modified",
             i, name, diff_hex, i - 1, diff_id);
        goto out;
    }
    rc = 0;
out:
    if (owned)
        fclose(f);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Config and manifests
 * ------------------------------------------------------------------------------------------ */
static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int apply_config(ha_image *img, const cJSON *cfg, const cJSON **diff_ids, char *err,
                        size_t errlen)
{
    const char *os = jstr(cfg, "os"), *arch = jstr(cfg, "architecture");
    const char *variant = jstr(cfg, "variant");
    errf(img->platform, sizeof(img->platform), "%s/%s%s%s", os ? os : "?", arch ? arch : "?",
         variant ? "/" : "", variant ? variant : "");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cfg, "config");
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(c, "Env");
    const cJSON *it;
    cJSON_ArrayForEach(it, env)
    {
        if (cJSON_IsString(it) && strncmp(it->valuestring, "PATH=", 5) == 0) {
            free(img->path_env);
            if (!(img->path_env = strdup(it->valuestring + 5)))
                return errf(err, errlen, "out of memory");
        }
    }
    const cJSON *hc = cJSON_GetObjectItemCaseSensitive(c, "Healthcheck");
    const cJSON *test = cJSON_GetObjectItemCaseSensitive(hc, "Test");
    if (cJSON_IsArray(test) && cJSON_GetArraySize(test) > 0 &&
        !(cJSON_IsString(test->child) && strcmp(test->child->valuestring, "NONE") == 0)) {
        char *s = cJSON_PrintUnformatted(test);
        if (!s)
            return errf(err, errlen, "out of memory");
        img->healthcheck = s;
    }
    const cJSON *rootfs = cJSON_GetObjectItemCaseSensitive(cfg, "rootfs");
    *diff_ids = cJSON_GetObjectItemCaseSensitive(rootfs, "diff_ids");
    if (!cJSON_IsArray(*diff_ids))
        return errf(err, errlen, "the image config has no rootfs.diff_ids list");
    return 0;
}

static int load_docker(archive *a, ha_image *img, char *err, size_t errlen)
{
    cJSON *man = read_json(a, "manifest.json", NULL, UINT64_MAX, err, errlen);
    if (!man)
        return -1;
    int rc = -1;
    cJSON *cfg = NULL;
    const cJSON *entry = cJSON_IsArray(man) ? man->child : NULL;
    const char *cfg_name = jstr(entry, "Config");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(entry, "Layers");
    if (!cfg_name || !cJSON_IsArray(layers)) {
        errf(err, errlen, "manifest.json: expected [{\"Config\": ..., \"Layers\": [...]}]");
        goto out;
    }
    if (cJSON_GetArraySize(man) > 1)
        errf(img->platform_note, sizeof(img->platform_note),
             "the tarball holds %d images; lint read the first", cJSON_GetArraySize(man));
    char hex[65];
    bool named = name_digest(cfg_name, hex);
    if (!(cfg = read_json(a, cfg_name, named ? hex : NULL, UINT64_MAX, err, errlen)))
        goto out;
    const cJSON *diff_ids;
    if (apply_config(img, cfg, &diff_ids, err, errlen) != 0)
        goto out;
    if (cJSON_GetArraySize(layers) != cJSON_GetArraySize(diff_ids)) {
        errf(err, errlen, "manifest.json lists %d layers but the config has %d diff_ids",
             cJSON_GetArraySize(layers), cJSON_GetArraySize(diff_ids));
        goto out;
    }
    unsigned i = 0;
    const cJSON *l, *d = diff_ids->child;
    cJSON_ArrayForEach(l, layers)
    {
        i++;
        if (!cJSON_IsString(l)) {
            errf(err, errlen, "manifest.json: Layers[%u] is not a string", i - 1);
            goto out;
        }
        char lhex[65];
        bool lnamed = name_digest(l->valuestring, lhex);
        if (load_layer(a, img, l->valuestring, lnamed ? lhex : NULL, UINT64_MAX,
                       cJSON_IsString(d) ? d->valuestring : NULL, i, err, errlen) != 0)
            goto out;
        d = d->next;
    }
    img->layers = i;
    /* go-containerregistry (ko build --tarball, crane pull) names the config by its digest. */
    errf(img->kind, sizeof(img->kind), "%s",
         strncmp(cfg_name, "sha256:", 7) == 0 ? "ko/crane tarball" : "docker save tarball");
    rc = 0;
out:
    cJSON_Delete(cfg);
    cJSON_Delete(man);
    return rc;
}

static bool is_index_type(const char *mt)
{
    return mt && (strcmp(mt, "application/vnd.oci.image.index.v1+json") == 0 ||
                  strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json") == 0);
}

typedef struct candidate {
    char digest[72];
    uint64_t size;
    char platform[64];
} candidate;

typedef struct candidates {
    candidate v[64];
    size_t n;
} candidates;

static int blob_name(const char *digest, char *name, size_t len, char *err, size_t errlen)
{
    const char *hex = sha256_hex_of(digest);
    if (!hex)
        return errf(err, errlen,
                    "digest \"%.100s\" is not sha256:<64 hex digits>; lint verifies "
                    "sha256 blobs only",
                    digest ? digest : "(none)");
    errf(name, len, "blobs/sha256/%s", hex);
    return 0;
}

static uint64_t desc_size(const cJSON *d)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(d, "size");
    if (!cJSON_IsNumber(s) || s->valuedouble < 0)
        return UINT64_MAX; /* absent: not checked */
    if (s->valuedouble >= 9.0e15)
        return UINT64_MAX - 1; /* beyond any file here: a certain mismatch, never a bad cast */
    return (uint64_t)s->valuedouble;
}

static int collect(archive *a, const cJSON *index, int depth, candidates *out, char *err,
                   size_t errlen)
{
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(index, "manifests");
    if (!cJSON_IsArray(ms))
        return errf(err, errlen, "an image index without a \"manifests\" list");
    const cJSON *d;
    cJSON_ArrayForEach(d, ms)
    {
        const char *mt = jstr(d, "mediaType"), *digest = jstr(d, "digest");
        char name[96];
        if (blob_name(digest, name, sizeof(name), err, errlen) != 0)
            return -1;
        if (is_index_type(mt)) {
            if (depth >= MAX_INDEX_DEPTH)
                return errf(err, errlen, "image indexes nested more than %d deep", MAX_INDEX_DEPTH);
            cJSON *sub = read_json(a, name, digest + 7, desc_size(d), err, errlen);
            if (!sub)
                return -1;
            int r = collect(a, sub, depth + 1, out, err, errlen);
            cJSON_Delete(sub);
            if (r != 0)
                return -1;
            continue;
        }
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(d, "platform");
        const char *os = jstr(p, "os"), *arch = jstr(p, "architecture");
        const char *variant = jstr(p, "variant");
        if (os && strcmp(os, "unknown") == 0)
            continue; /* attestations (buildx) */
        if (out->n == sizeof(out->v) / sizeof(out->v[0]))
            return errf(err, errlen, "more than %zu manifests in the image index",
                        sizeof(out->v) / sizeof(out->v[0]));
        candidate *c = &out->v[out->n++];
        errf(c->digest, sizeof(c->digest), "%s", digest);
        c->size = desc_size(d);
        if (os && arch)
            errf(c->platform, sizeof(c->platform), "%s/%s%s%s", os, arch, variant ? "/" : "",
                 variant ? variant : "");
        else
            c->platform[0] = '\0';
    }
    return 0;
}

static bool platform_matches(const char *have, const char *want)
{
    if (strcmp(have, want) == 0)
        return true;
    /* "linux/arm64" matches "linux/arm64/v8" and the other way round. */
    size_t n = strlen(want);
    return strncmp(have, want, n) == 0 && have[n] == '/';
}

static int load_oci(archive *a, ha_image *img, const char *want_platform, char *err, size_t errlen)
{
    cJSON *index = read_json(a, "index.json", NULL, UINT64_MAX, err, errlen);
    if (!index)
        return -1;
    int rc = -1;
    cJSON *man = NULL, *cfg = NULL;
    candidates *cs = calloc(1, sizeof(*cs));
    if (!cs) {
        errf(err, errlen, "out of memory");
        goto out;
    }
    if (collect(a, index, 0, cs, err, errlen) != 0)
        goto out;
    if (cs->n == 0) {
        errf(err, errlen, "index.json lists no image manifest");
        goto out;
    }
    const candidate *pick = NULL;
    if (cs->n == 1) {
        pick = &cs->v[0];
    } else {
        char list[256] = "";
        for (size_t i = 0; i < cs->n; i++) {
            size_t o = strlen(list);
            errf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "",
                 cs->v[i].platform[0] ? cs->v[i].platform : "(no platform)");
            if (!pick && platform_matches(cs->v[i].platform, want_platform))
                pick = &cs->v[i];
        }
        if (!pick) {
            errf(err, errlen,
                 "the image index has no %s image (it has %s); choose one with "
                 "--platform",
                 want_platform, list);
            goto out;
        }
        errf(img->platform_note, sizeof(img->platform_note),
             "image index of %zu platforms (%s): used %s", cs->n, list, pick->platform);
    }
    char name[96];
    if (blob_name(pick->digest, name, sizeof(name), err, errlen) != 0 ||
        !(man = read_json(a, name, pick->digest + 7, pick->size, err, errlen)))
        goto out;
    const cJSON *cd = cJSON_GetObjectItemCaseSensitive(man, "config");
    const char *cdig = jstr(cd, "digest");
    if (blob_name(cdig, name, sizeof(name), err, errlen) != 0 ||
        !(cfg = read_json(a, name, cdig + 7, desc_size(cd), err, errlen)))
        goto out;
    const cJSON *diff_ids;
    if (apply_config(img, cfg, &diff_ids, err, errlen) != 0)
        goto out;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(man, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) != cJSON_GetArraySize(diff_ids)) {
        errf(err, errlen, "the manifest's layers and the config's rootfs.diff_ids disagree");
        goto out;
    }
    unsigned i = 0;
    const cJSON *l, *d = diff_ids->child;
    cJSON_ArrayForEach(l, layers)
    {
        i++;
        const char *mt = jstr(l, "mediaType"), *ldig = jstr(l, "digest");
        if (mt && strstr(mt, "zstd")) {
            errf(err, errlen,
                 "layer %u (%s) is zstd-compressed (%s), which lint does not read; build the "
                 "image with gzip layers",
                 i, ldig ? ldig : "?", mt);
            goto out;
        }
        if (blob_name(ldig, name, sizeof(name), err, errlen) != 0)
            goto out;
        if (load_layer(a, img, name, ldig + 7, desc_size(l),
                       cJSON_IsString(d) ? d->valuestring : NULL, i, err, errlen) != 0)
            goto out;
        d = d->next;
    }
    img->layers = i;
    errf(img->kind, sizeof(img->kind), "OCI image layout %s", a->is_dir ? "directory" : "tar");
    rc = 0;
out:
    free(cs);
    cJSON_Delete(cfg);
    cJSON_Delete(man);
    cJSON_Delete(index);
    return rc;
}

int ha_image_load(const char *path, const char *platform, ha_image *img, char *err, size_t errlen)
{
    memset(img, 0, sizeof(*img));
    if (ha_fs_init(&img->fs) != 0)
        return errf(err, errlen, "out of memory");
    archive a;
    int rc = -1;
    if (archive_open(&a, path, err, errlen) != 0)
        goto out;
    FILE *f;
    uint64_t off, size;
    bool owned;
    int r = archive_find(&a, "index.json", &f, &off, &size, &owned, err, errlen);
    if (r < 0)
        goto out;
    if (r == 1) {
        if (owned)
            fclose(f);
        rc = load_oci(&a, img, platform, err, errlen);
        goto out;
    }
    r = archive_find(&a, "manifest.json", &f, &off, &size, &owned, err, errlen);
    if (r < 0)
        goto out;
    if (r == 1) {
        if (owned)
            fclose(f);
        rc = load_docker(&a, img, err, errlen);
        goto out;
    }
    errf(err, errlen,
         "neither a docker save tarball (no manifest.json) nor an OCI image layout (no "
         "index.json); give what `docker save`, `ko build --tarball`, `crane pull` or `skopeo "
         "copy ... oci:DIR` write");
out:
    archive_close(&a);
    if (rc != 0)
        ha_image_free(img);
    return rc;
}

void ha_image_free(ha_image *img)
{
    ha_fs_free(&img->fs);
    free(img->path_env);
    free(img->healthcheck);
    img->path_env = img->healthcheck = NULL;
}
