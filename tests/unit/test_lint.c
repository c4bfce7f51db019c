/* test_lint.c - unit tests for lint's pieces that need no image file: SHA-256 (FIPS 180-4
 * vectors, odd chunking), tar header parsing (ustar, base-256 size, pax path, GNU long name,
 * bad checksum, truncation), path normalisation ("../" refused), the merged path index
 * (whiteouts and opaque markers independent of entry order, hard links) and symlink
 * resolution inside the image root (relative, absolute, "..", loops, non-directories). */
#include "healthagg/lint.h"
#include "unit.h"

#include <stdlib.h>

static void sha_hex(const void *data, size_t n, size_t chunk, char hex[65])
{
    ha_sha256 s;
    ha_sha256_init(&s);
    const unsigned char *p = data;
    for (size_t off = 0; off < n; off += chunk)
        ha_sha256_update(&s, p + off, n - off < chunk ? n - off : chunk);
    ha_sha256_hex(&s, hex);
}

static void test_sha256(void)
{
    char hex[65];
    sha_hex("", 0, 1, hex);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    sha_hex("abc", 3, 1, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (size_t chunk = 1; chunk < 70; chunk += 13) {
        sha_hex(two, strlen(two), chunk, hex);
        CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    }
    char *million = malloc(1000000);
    CHECK(million != NULL);
    if (million) {
        memset(million, 'a', 1000000);
        sha_hex(million, 1000000, 4099, hex);
        CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
        free(million);
    }
}

static void test_normalize(void)
{
    char out[64], err[HA_LINT_ERR];
    CHECK(ha_fs_normalize("./a//b/./c", out, sizeof(out), err, sizeof(err)) == 0 &&
          strcmp(out, "a/b/c") == 0);
    CHECK(ha_fs_normalize("/etc/passwd", out, sizeof(out), err, sizeof(err)) == 0 &&
          strcmp(out, "etc/passwd") == 0);
    CHECK(ha_fs_normalize("a/b/../c/", out, sizeof(out), err, sizeof(err)) == 0 &&
          strcmp(out, "a/c") == 0);
    CHECK(ha_fs_normalize("../etc/passwd", out, sizeof(out), err, sizeof(err)) != 0);
    CHECK_STR_CONTAINS(err, "leads outside the image root");
    CHECK(ha_fs_normalize("a/../../x", out, sizeof(out), err, sizeof(err)) != 0);
    CHECK(ha_fs_normalize("./", out, sizeof(out), err, sizeof(err)) != 0);
    CHECK(ha_fs_normalize("0123456789/0123456789/0123456789/0123456789/0123456789/0123456789/x",
                          out, sizeof(out), err, sizeof(err)) != 0);
}

/* ---- tar headers built by hand ---- */
typedef struct buf {
    unsigned char *p;
    size_t n, off;
} buf;

static ssize_t buf_read(void *ctx, uint8_t *dst, size_t n, char *err, size_t errlen)
{
    buf *b = ctx;
    (void)err;
    (void)errlen;
    size_t k = b->n - b->off < n ? b->n - b->off : n;
    memcpy(dst, b->p + b->off, k);
    b->off += k;
    return (ssize_t)k;
}

static void header(unsigned char *h, const char *name, char type, uint64_t size, bool base256)
{
    memset(h, 0, 512);
    memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
    memcpy(h + 100, "0000755", 7);
    if (base256) {
        h[124] = 0x80;
        for (int i = 0; i < 8; i++)
            h[135 - i] = (unsigned char)(size >> (8 * i));
    } else {
        snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    }
    h[156] = (unsigned char)type;
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

static void test_tar(void)
{
    unsigned char a[512 * 12];
    memset(a, 0, sizeof(a));
    header(a, "bin/sh", '0', 3, true); /* base-256 size */
    memcpy(a + 512, "abc", 3);
    const char rec[] = "29 path=opt/a-very-long/name\n";
    header(a + 1024, "PaxHeaders/x", 'x', sizeof(rec) - 1, false);
    memcpy(a + 1536, rec, sizeof(rec) - 1);
    header(a + 2048, "short", '5', 0, false);
    header(a + 2560, "././@LongLink", 'L', 9, false);
    memcpy(a + 3072, "gnu/long", 9);
    header(a + 3584, "trunc", '2', 0, false);
    memcpy(a + 3584 + 157, "target", 6);
    /* recompute the checksum after setting the link name */
    memset(a + 3584 + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += a[3584 + i];
    snprintf((char *)a + 3584 + 148, 8, "%06o", sum);
    buf b = {a, 512 * 8 + 1024, 0};
    ha_tar t;
    ha_tar_init(&t, (ha_src){buf_read, NULL, &b});
    const ha_tar_entry *e;
    CHECK(ha_tar_next(&t, &e) == 1 && strcmp(e->name, "bin/sh") == 0 && e->size == 3 &&
          e->type == HA_TAR_FILE && e->mode == 0755);
    char data[8];
    CHECK(ha_tar_read(&t, data, sizeof(data)) == 3 && memcmp(data, "abc", 3) == 0);
    CHECK(ha_tar_next(&t, &e) == 1 && strcmp(e->name, "opt/a-very-long/name") == 0 &&
          e->type == HA_TAR_DIR);
    CHECK(ha_tar_next(&t, &e) == 1 && strcmp(e->name, "gnu/long") == 0 &&
          e->type == HA_TAR_SYMLINK && strcmp(e->linkname, "target") == 0);
    CHECK(ha_tar_next(&t, &e) == 0);

    /* A bad checksum, then a truncated entry. */
    a[600 - 512] ^= 1;
    b.off = 0;
    ha_tar_init(&t, (ha_src){buf_read, NULL, &b});
    CHECK(ha_tar_next(&t, &e) == -1);
    CHECK_STR_CONTAINS(t.err, "bad checksum");
    header(a, "big", '0', 1u << 20, false);
    b.off = 0;
    b.n = 1024;
    ha_tar_init(&t, (ha_src){buf_read, NULL, &b});
    CHECK(ha_tar_next(&t, &e) == 1 && e->size == 1u << 20);
    CHECK(ha_tar_next(&t, &e) == -1);
    CHECK_STR_CONTAINS(t.err, "truncated");
}

/* ---- the merged view ---- */
static void add(ha_fsview *v, const char *name, ha_tar_type type, unsigned mode, const char *link,
                unsigned layer)
{
    ha_tar_entry e;
    memset(&e, 0, sizeof(e));
    snprintf(e.name, sizeof(e.name), "%s", name);
    snprintf(e.linkname, sizeof(e.linkname), "%s", link ? link : "");
    e.type = type;
    e.mode = mode;
    char err[HA_LINT_ERR] = "";
    int rc = ha_fs_apply(v, &e, layer, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "apply %s: %s\n", name, err);
    CHECK(rc == 0);
}

static ha_fs_status resolve(const ha_fsview *v, const char *path, ha_fs_lookup *lk)
{
    ha_fs_resolve(v, path, lk);
    return lk->status;
}

static void test_fsview(void)
{
    ha_fsview v;
    ha_fs_lookup lk;
    CHECK(ha_fs_init(&v) == 0);
    add(&v, "bin/busybox", HA_TAR_FILE, 0755, NULL, 1);
    add(&v, "bin/sh", HA_TAR_SYMLINK, 0777, "busybox", 1);
    add(&v, "usr/bin/wget", HA_TAR_SYMLINK, 0777, "/bin/busybox", 1);
    add(&v, "etc/conf/a", HA_TAR_FILE, 0644, NULL, 1);
    add(&v, "lib", HA_TAR_SYMLINK, 0777, "usr/lib", 1);
    add(&v, "usr/lib/x.so", HA_TAR_FILE, 0755, NULL, 1);
    add(&v, "loop/a", HA_TAR_SYMLINK, 0777, "b", 1);
    add(&v, "loop/b", HA_TAR_SYMLINK, 0777, "/loop/a", 1);
    CHECK(resolve(&v, "/bin/sh", &lk) == HA_FS_FOUND && strcmp(lk.resolved, "/bin/busybox") == 0 &&
          strcmp(lk.via, "/bin/sh -> busybox") == 0);
    CHECK(resolve(&v, "/usr/bin/wget", &lk) == HA_FS_FOUND);
    CHECK(resolve(&v, "/lib/x.so", &lk) == HA_FS_FOUND &&
          strcmp(lk.resolved, "/usr/lib/x.so") == 0);
    CHECK(resolve(&v, "/../../bin/../bin/sh", &lk) == HA_FS_FOUND);
    CHECK(resolve(&v, "/loop/a", &lk) == HA_FS_LOOP);
    CHECK(resolve(&v, "/bin/busybox/x", &lk) == HA_FS_NOTDIR);
    CHECK(resolve(&v, "/usr/local/bin/curl", &lk) == HA_FS_MISSING &&
          strcmp(lk.missing, "/usr/local") == 0);

    /* Layer 2: the opaque marker comes after this layer's own file in the same directory. */
    add(&v, "etc/conf/b", HA_TAR_FILE, 0644, NULL, 2);
    add(&v, "etc/conf/.wh..wh..opq", HA_TAR_FILE, 0644, NULL, 2);
    CHECK(resolve(&v, "/etc/conf/a", &lk) == HA_FS_MISSING);
    CHECK(resolve(&v, "/etc/conf/b", &lk) == HA_FS_FOUND);
    /* Whiteout of the busybox binary breaks both links to it. */
    add(&v, "bin/.wh.busybox", HA_TAR_FILE, 0644, NULL, 2);
    CHECK(resolve(&v, "/bin/sh", &lk) == HA_FS_MISSING && strcmp(lk.missing, "/bin/busybox") == 0 &&
          strcmp(lk.via, "/bin/sh -> busybox") == 0);
    CHECK(resolve(&v, "/usr/bin/wget", &lk) == HA_FS_MISSING);
    /* Layer 3: a hard link takes its target's mode; a whole directory whited out. */
    add(&v, "bin/dash", HA_TAR_FILE, 0750, NULL, 3);
    add(&v, "bin/sh", HA_TAR_HARDLINK, 0644, "bin/dash", 3);
    CHECK(resolve(&v, "/bin/sh", &lk) == HA_FS_FOUND && lk.node->type == HA_FS_FILE &&
          lk.node->mode == 0750);
    add(&v, ".wh.usr", HA_TAR_FILE, 0644, NULL, 3);
    CHECK(resolve(&v, "/lib/x.so", &lk) == HA_FS_MISSING && strcmp(lk.missing, "/usr") == 0);
    /* A file replaces a directory and its subtree. */
    add(&v, "etc/conf", HA_TAR_FILE, 0644, NULL, 3);
    CHECK(resolve(&v, "/etc/conf/b", &lk) == HA_FS_NOTDIR);
    size_t before = v.count;
    ha_tar_entry e;
    memset(&e, 0, sizeof(e));
    snprintf(e.name, sizeof(e.name), "x/../../evil");
    char err[HA_LINT_ERR];
    CHECK(ha_fs_apply(&v, &e, 3, err, sizeof(err)) != 0 && v.count == before);
    snprintf(e.name, sizeof(e.name), "bin/ln");
    snprintf(e.linkname, sizeof(e.linkname), "bin/nothing");
    e.type = HA_TAR_HARDLINK;
    CHECK(ha_fs_apply(&v, &e, 3, err, sizeof(err)) != 0);
    CHECK_STR_CONTAINS(err, "no earlier entry created");
    ha_fs_free(&v);
}

static void test_json_line(void)
{
    const char *t = "{\n  \"a\": [\n    {\"b\": 1},\n    {\"b\": \"x\\\"y\",\n     \"c\": {\"d\": "
                    "true}}\n  ],\n"
                    "  \"e\": \"line\\nbreak\"\n}\n";
    size_t n = strlen(t);
    CHECK(ha_json_line(t, n, "a") == 2);
    CHECK(ha_json_line(t, n, "a[0].b") == 3);
    CHECK(ha_json_line(t, n, "a[1].c.d") == 5);
    CHECK(ha_json_line(t, n, "a[1].c.missing") == 5); /* the nearest existing parent */
    CHECK(ha_json_line(t, n, "e") == 7);
    CHECK(ha_json_line(t, n, "zzz") == 1);
}

int main(void)
{
    test_sha256();
    test_normalize();
    test_tar();
    test_fsview();
    test_json_line();
    return unit_report("unit_lint");
}
