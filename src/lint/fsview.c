/* fsview.c - the merged filesystem of an image's layers, as a path index (no file data).
 *
 * A tree of nodes (one per path) plus a hash table keyed by (parent, name), so applying an
 * entry costs one lookup per path component and a whiteout removes a subtree by walking only
 * that subtree. Each node remembers the layer that last wrote it: a whiteout or an opaque
 * marker in layer L removes what lower layers wrote, never what L itself adds, whatever the
 * order of entries inside L. Symlinks are resolved against this tree, never the host's
 * filesystem: "/bin/sh -> bash" is broken when the image has no /bin/bash. */
#include "healthagg/lint.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES (4u * 1024 * 1024)
#define MAX_HOPS 40

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

int ha_fs_init(ha_fsview *v)
{
    memset(v, 0, sizeof(*v));
    v->root.type = HA_FS_DIR;
    v->root.mode = 0755;
    v->root.parent = &v->root;
    v->nbuckets = 1024;
    v->max_nodes = MAX_NODES;
    v->buckets = calloc(v->nbuckets, sizeof(*v->buckets));
    return v->buckets ? 0 : -1;
}

static size_t hash(const ha_fs_node *parent, const char *name, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)parent;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

static ha_fs_node *find(const ha_fsview *v, const ha_fs_node *parent, const char *name, size_t len)
{
    for (ha_fs_node *n = v->buckets[hash(parent, name, len) & (v->nbuckets - 1)]; n; n = n->hnext)
        if (n->parent == parent && strncmp(n->name, name, len) == 0 && n->name[len] == '\0')
            return n;
    return NULL;
}

static int grow(ha_fsview *v)
{
    size_t nb = v->nbuckets * 2;
    ha_fs_node **b = calloc(nb, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < v->nbuckets; i++) {
        ha_fs_node *n = v->buckets[i];
        while (n) {
            ha_fs_node *next = n->hnext;
            size_t k = hash(n->parent, n->name, strlen(n->name)) & (nb - 1);
            n->hnext = b[k];
            b[k] = n;
            n = next;
        }
    }
    free(v->buckets);
    v->buckets = b;
    v->nbuckets = nb;
    return 0;
}

static ha_fs_node *create(ha_fsview *v, ha_fs_node *parent, const char *name, size_t len, char *err,
                          size_t errlen)
{
    if (v->count >= v->max_nodes) {
        errf(err, errlen, "more than %zu paths in the image; lint's path index stops there",
             v->max_nodes);
        return NULL;
    }
    if (v->count >= v->nbuckets && grow(v) != 0) {
        errf(err, errlen, "out of memory");
        return NULL;
    }
    ha_fs_node *n = calloc(1, sizeof(*n));
    char *nm = malloc(len + 1);
    if (!n || !nm) {
        free(n);
        free(nm);
        errf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(nm, name, len);
    nm[len] = '\0';
    n->name = nm;
    n->parent = parent;
    n->next = parent->child;
    if (parent->child)
        parent->child->prev = n;
    parent->child = n;
    size_t k = hash(parent, name, len) & (v->nbuckets - 1);
    n->hnext = v->buckets[k];
    v->buckets[k] = n;
    v->count++;
    return n;
}

/* Unlinks a childless node from its parent and the hash table and frees it. */
static void destroy(ha_fsview *v, ha_fs_node *n)
{
    ha_fs_node **pp = &v->buckets[hash(n->parent, n->name, strlen(n->name)) & (v->nbuckets - 1)];
    while (*pp && *pp != n)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = n->hnext;
    if (n->prev)
        n->prev->next = n->next;
    else
        n->parent->child = n->next;
    if (n->next)
        n->next->prev = n->prev;
    free(n->name);
    free(n->target);
    free(n);
    v->count--;
}

/* Removes top's subtree, children before parents, without recursion (a deep tree must not
 * exhaust the stack). With `keep`, nodes written by `layer` survive, and so do their ancestors
 * (a lower directory that now holds something of this layer). top must not be the root. */
static void remove_tree(ha_fsview *v, ha_fs_node *top, bool keep, unsigned layer)
{
    ha_fs_node *n = top;
    while (n->child)
        n = n->child;
    for (;;) {
        ha_fs_node *next = n->next, *parent = n->parent;
        bool is_top = n == top;
        bool kept = (keep && n->layer == layer) || n->child != NULL;
        if (!kept)
            destroy(v, n);
        if (is_top)
            return;
        if (next) {
            n = next;
            while (n->child)
                n = n->child;
        } else {
            n = parent;
        }
    }
}

int ha_fs_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    size_t o = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - s);
        if (len == 0 || (len == 1 && s[0] == '.'))
            continue;
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            if (o == 0)
                return errf(err, errlen, "\"%.200s\" leads outside the image root (\"..\")", in);
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            continue;
        }
        if (o + (o ? 1 : 0) + len + 1 > outlen)
            return errf(err, errlen, "a path longer than %zu bytes", outlen - 1);
        if (o)
            out[o++] = '/';
        memcpy(out + o, s, len);
        o += len;
    }
    out[o] = '\0';
    if (o == 0)
        return errf(err, errlen, "an entry names the image root itself (\"%.200s\")", in);
    return 0;
}

/* Walks to the parent directory of path "a/b/c", creating missing or non-directory
 * components as directories written by `layer`; sets *last to "c". */
static ha_fs_node *walk_parent(ha_fsview *v, const char *path, unsigned layer, const char **last,
                               char *err, size_t errlen)
{
    ha_fs_node *cur = &v->root;
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash) {
            *last = p;
            return cur;
        }
        size_t len = (size_t)(slash - p);
        ha_fs_node *n = find(v, cur, p, len);
        if (n && n->type != HA_FS_DIR) {
            remove_tree(v, n, false, 0);
            n = NULL;
        }
        if (!n) {
            n = create(v, cur, p, len, err, errlen);
            if (!n)
                return NULL;
            n->type = HA_FS_DIR;
            n->mode = 0755;
            n->layer = layer;
        }
        cur = n;
        p = slash + 1;
    }
}

static ha_fs_node *lookup_exact(const ha_fsview *v, const char *path)
{
    const ha_fs_node *cur = &v->root;
    const char *p = path;
    while (cur) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        cur = find(v, cur, p, len);
        if (!slash)
            return (ha_fs_node *)cur;
        p = slash + 1;
    }
    return NULL;
}

int ha_fs_apply(ha_fsview *v, const ha_tar_entry *e, unsigned layer, char *err, size_t errlen)
{
    char path[HA_TAR_NAME_MAX], e2[HA_LINT_ERR];
    if (ha_fs_normalize(e->name, path, sizeof(path), e2, sizeof(e2)) != 0)
        return errf(err, errlen, "entry %s", e2);
    const char *last;
    char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;

    /* Whiteouts: ".wh..wh..opq" hides the directory's lower contents, ".wh.NAME" hides NAME. */
    if (strncmp(base, ".wh.", 4) == 0) {
        ha_fs_node *dir = slash ? (*slash = '\0', lookup_exact(v, path)) : &v->root;
        if (strcmp(base, ".wh..wh..opq") == 0) {
            if (dir && dir->type == HA_FS_DIR) {
                dir->layer = layer;
                ha_fs_node *c = dir->child;
                while (c) {
                    ha_fs_node *next = c->next;
                    remove_tree(v, c, true, layer);
                    c = next;
                }
            }
            return 0;
        }
        if (dir) {
            ha_fs_node *victim = find(v, dir, base + 4, strlen(base + 4));
            if (victim)
                remove_tree(v, victim, true, layer);
        }
        return 0;
    }

    const ha_fs_node *target = NULL;
    if (e->type == HA_TAR_HARDLINK) {
        char tpath[HA_TAR_NAME_MAX];
        if (ha_fs_normalize(e->linkname, tpath, sizeof(tpath), e2, sizeof(e2)) != 0)
            return errf(err, errlen, "hard link %.200s: target %s", e->name, e2);
        target = lookup_exact(v, tpath);
        if (!target)
            return errf(err, errlen,
                        "hard link %.200s points to %.200s, which no earlier entry created",
                        e->name, e->linkname);
    }

    ha_fs_node *parent = walk_parent(v, path, layer, &last, err, errlen);
    if (!parent)
        return -1;
    ha_fs_node *n = find(v, parent, last, strlen(last));
    ha_fs_type type = e->type == HA_TAR_DIR       ? HA_FS_DIR
                      : e->type == HA_TAR_SYMLINK ? HA_FS_SYMLINK
                      : e->type == HA_TAR_OTHER   ? HA_FS_OTHER
                                                  : HA_FS_FILE;
    unsigned mode = e->mode;
    char *tcopy = NULL;
    if (target) {
        type = target->type;
        mode = target->mode;
        if (target->target && !(tcopy = strdup(target->target)))
            return errf(err, errlen, "out of memory");
    } else if (type == HA_FS_SYMLINK) {
        if (!(tcopy = strdup(e->linkname)))
            return errf(err, errlen, "out of memory");
    }
    if (n && (n->type != HA_FS_DIR || type != HA_FS_DIR)) {
        if (n == target) { /* a hard link to itself: nothing changes */
            free(tcopy);
            return 0;
        }
        remove_tree(v, n, false, 0);
        n = NULL;
    }
    if (!n) {
        n = create(v, parent, last, strlen(last), err, errlen);
        if (!n) {
            free(tcopy);
            return -1;
        }
    }
    n->type = type;
    n->mode = mode & 07777;
    n->layer = layer;
    free(n->target);
    n->target = tcopy;
    return 0;
}

void ha_fs_free(ha_fsview *v)
{
    if (!v->buckets)
        return;
    while (v->root.child)
        remove_tree(v, v->root.child, false, 0);
    free(v->buckets);
    v->buckets = NULL;
}

static void node_path(const ha_fs_node *n, char *out, size_t outlen)
{
    const ha_fs_node *chain[256];
    size_t depth = 0;
    while (n->parent != n && depth < 256) {
        chain[depth++] = n;
        n = n->parent;
    }
    size_t o = 0;
    out[0] = '\0';
    if (depth == 0) {
        snprintf(out, outlen, "/");
        return;
    }
    while (depth > 0 && o < outlen) {
        int w = snprintf(out + o, outlen - o, "/%s", chain[--depth]->name);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

void ha_fs_resolve(const ha_fsview *v, const char *path, ha_fs_lookup *out)
{
    memset(out, 0, sizeof(*out));
    /* rest: the components still to walk, rewritten when a symlink is followed. */
    char rest[2 * HA_TAR_NAME_MAX], tmp[2 * HA_TAR_NAME_MAX];
    snprintf(rest, sizeof(rest), "%s", path);
    const ha_fs_node *cur = &v->root;
    unsigned hops = 0;
    size_t pos = 0;
    for (;;) {
        while (rest[pos] == '/')
            pos++;
        if (rest[pos] == '\0')
            break;
        size_t s = pos;
        while (rest[pos] && rest[pos] != '/')
            pos++;
        size_t len = pos - s;
        if (len == 1 && rest[s] == '.')
            continue;
        if (len == 2 && rest[s] == '.' && rest[s + 1] == '.') {
            cur = cur->parent;
            continue;
        }
        if (cur->type != HA_FS_DIR) {
            out->status = HA_FS_NOTDIR;
            node_path(cur, out->missing, sizeof(out->missing));
            return;
        }
        const ha_fs_node *n = find(v, cur, rest + s, len);
        if (!n) {
            char dir[1024];
            node_path(cur, dir, sizeof(dir));
            out->status = HA_FS_MISSING;
            errf(out->missing, sizeof(out->missing), "%s%s%.*s", dir,
                 strcmp(dir, "/") == 0 ? "" : "/", (int)len, rest + s);
            return;
        }
        if (n->type == HA_FS_SYMLINK) {
            if (++hops > MAX_HOPS) {
                out->status = HA_FS_LOOP;
                node_path(n, out->missing, sizeof(out->missing));
                return;
            }
            if (!out->via[0]) {
                char lp[1024];
                node_path(n, lp, sizeof(lp));
                errf(out->via, sizeof(out->via), "%s -> %s", lp, n->target);
            }
            errf(tmp, sizeof(tmp), "%s/%s", n->target ? n->target : "", rest + pos);
            memcpy(rest, tmp, sizeof(rest));
            pos = 0;
            if (rest[0] == '/')
                cur = &v->root;
            continue;
        }
        cur = n;
    }
    out->status = HA_FS_FOUND;
    out->node = cur;
    node_path(cur, out->resolved, sizeof(out->resolved));
}
