/* rules.c - the rules over one ECS task definition, each with an id, a JSON path, what is wrong
 * and how to fix it.
 *
 * Works on the cJSON tree of either shape (RegisterTaskDefinition input, or the
 * `describe-task-definition` output whose "taskDefinition" holds it; read-only fields are
 * simply never looked at). The healthagg sidecar's HEALTHAGG_CONFIG goes through the real
 * config validator (ha_config_parse_json), so lint and `serve` can never disagree about a
 * config. Trade-off: rules name what they can prove from the JSON (and the image, with
 * --image); where only the image could tell (a shell in an unknown image), the finding is a
 * warning that says how to prove it. */
#include "healthagg/config.h"
#include "healthagg/lint.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONTAINERS 128
#define MAX_PORTS 32
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void ha_findings_add(ha_findings *f, ha_severity sev, const char *rule, const char *path,
                     const char *fix, const char *fmt, ...)
{
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 16;
        ha_finding *v = realloc(f->v, nc * sizeof(*v));
        if (!v) {
            f->oom = true;
            return;
        }
        f->v = v;
        f->cap = nc;
    }
    ha_finding *x = &f->v[f->n++];
    x->sev = sev;
    x->rule[0] = x->path[0] = x->fix[0] = '\0';
    strncat(x->rule, rule, sizeof(x->rule) - 1);
    strncat(x->path, path, sizeof(x->path) - 1);
    strncat(x->fix, fix ? fix : "", sizeof(x->fix) - 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->message, sizeof(x->message), fmt, ap);
    va_end(ap);
}

void ha_findings_free(ha_findings *f)
{
    free(f->v);
    memset(f, 0, sizeof(*f));
}

typedef struct ctr {
    const cJSON *j;
    const char *name;
    const char *image;
    char path[96];
    bool essential;
    const cJSON *hc;     /* healthCheck, NULL when absent or NONE */
    const char *hc_kind; /* "CMD", "CMD-SHELL" or NULL when malformed */
    bool sidecar;
    unsigned ports[MAX_PORTS];
    size_t nports;
    ha_lint_image *img;
    bool probed;          /* a healthagg check targets it */
    bool probed_critical; /* a critical one */
    int color;            /* dependsOn cycle search */
} ctr;

typedef struct lint {
    ha_findings *out;
    const cJSON *td;
    char prefix[24]; /* "" or "taskDefinition." */
    ctr c[MAX_CONTAINERS];
    size_t n;
    bool awsvpc; /* awsvpc or host: one network namespace, shared localhost */
    int sidecar; /* index of the healthagg container, -1 when none */
    ha_config cfg;
    bool cfg_ok;
    const char *probe_group; /* `probe --group G` in the sidecar's health check, or NULL */
    uint64_t gate_mask;      /* the checks that decide the sidecar's health: that group's bit */
} lint;

/* Whether check k decides what the sidecar's health check says (all checks, or its group). */
static bool gates(const lint *l, const ha_check_config *k)
{
    return !l->probe_group || (k->group_mask & l->gate_mask);
}

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *env_value(const ctr *c, const char *name, int *index)
{
    const cJSON *env = get(c->j, "environment"), *e;
    int i = 0;
    cJSON_ArrayForEach(e, env)
    {
        const char *n = get_str(e, "name");
        if (n && strcmp(n, name) == 0) {
            if (index)
                *index = i;
            return get_str(e, "value");
        }
        i++;
    }
    return NULL;
}

/* The repository part of an image reference: no registry host, no tag, no digest. */
static void image_repo(const char *image, char *out, size_t len)
{
    const char *s = image;
    const char *slash = strchr(s, '/');
    if (slash) {
        /* A first component with '.' or ':' or "localhost" is a registry host. */
        size_t hl = (size_t)(slash - s);
        if (memchr(s, '.', hl) || memchr(s, ':', hl) || (hl == 9 && !strncmp(s, "localhost", 9)))
            s = slash + 1;
    }
    snprintf(out, len, "%s", s);
    char *at = strchr(out, '@');
    if (at)
        *at = '\0';
    char *last = strrchr(out, '/');
    char *colon = strchr(last ? last : out, ':');
    if (colon)
        *colon = '\0';
}

static const char *image_tag(const char *image)
{
    const char *last = strrchr(image, '/');
    const char *colon = strchr(last ? last : image, ':');
    return colon ? colon + 1 : "";
}

static bool repo_is(const char *repo, const char *name)
{
    const char *last = strrchr(repo, '/');
    return strcmp(last ? last + 1 : repo, name) == 0;
}

/* Why an image is known to have no shell, or NULL. */
static const char *shellless_reason(const char *image)
{
    char repo[512];
    image_repo(image, repo, sizeof(repo));
    const char *tag = image_tag(image);
    if (strncmp(image, "ko://", 5) == 0)
        return "a ko build, whose default base (cgr.dev/chainguard/static) has no shell";
    if (strstr(repo, "chainguard/static"))
        return "chainguard static has no shell";
    if (strstr(repo, "distroless") && !strstr(tag, "debug"))
        return "distroless images have no shell (only their :debug tags have busybox)";
    if (strcmp(repo, "scratch") == 0)
        return "scratch is empty";
    if (strstr(repo, "healthagg"))
        return "healthagg's image is FROM scratch: one static binary, no shell";
    return NULL;
}

/* Images commonly used with CMD-SHELL health checks that are known to have a shell. */
static bool has_shell_known(const char *image)
{
    static const char *const with_shell[] = {"alpine",
                                             "debian",
                                             "ubuntu",
                                             "amazonlinux",
                                             "busybox",
                                             "nginx",
                                             "httpd",
                                             "redis",
                                             "postgres",
                                             "python",
                                             "node",
                                             "golang",
                                             "ruby",
                                             "php",
                                             "centos",
                                             "fedora",
                                             "aws-for-fluent-bit",
                                             "aws-appmesh-envoy",
                                             "envoy",
                                             "haproxy",
                                             "memcached",
                                             "mysql",
                                             NULL};
    char repo[512];
    image_repo(image, repo, sizeof(repo));
    if (strstr(repo, "distroless"))
        return false;
    for (size_t i = 0; with_shell[i]; i++)
        if (repo_is(repo, with_shell[i]))
            return true;
    return false;
}

static void add(lint *l, ha_severity sev, const char *rule, const char *path, const char *fix,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void add(lint *l, ha_severity sev, const char *rule, const char *path, const char *fix,
                const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ha_findings_add(l->out, sev, rule, path, fix, "%s", msg);
}

static void pathf(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pathf(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------------------------
 * healthCheck ranges and command shape (ECS's ranges and defaults: interval 5-300 s (30),
 * timeout 2-60 s (5), retries 1-10 (3), startPeriod 0-300 s (0))
 * ------------------------------------------------------------------------------------------ */
typedef struct hc_values {
    int interval, timeout, retries, start_period;
} hc_values;

static int hc_int(lint *l, const ctr *c, const char *key, int def, int lo, int hi, const char *rule,
                  const char *meaning)
{
    const cJSON *v = get(c->hc, key);
    char path[160];
    pathf(path, sizeof(path), "%s.healthCheck.%s", c->path, key);
    if (!v)
        return def;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble) {
        add(l, HA_SEV_ERROR, rule, path, NULL, "must be a whole number of %s, between %d and %d",
            meaning, lo, hi);
        return -1;
    }
    int x = v->valueint;
    if (x < lo || x > hi) {
        char fix[96];
        pathf(fix, sizeof(fix), "use a value from %d to %d", lo, hi);
        add(l, HA_SEV_ERROR, rule, path, fix,
            "%d is outside ECS's range %d-%d %s; RegisterTaskDefinition rejects it", x, lo, hi,
            meaning);
        return -1;
    }
    return x;
}

static void check_hc_shape(lint *l, ctr *c, hc_values *hv)
{
    char path[160];
    pathf(path, sizeof(path), "%s.healthCheck.command", c->path);
    const cJSON *cmd = get(c->hc, "command"), *it;
    c->hc_kind = NULL;
    bool strings = cJSON_IsArray(cmd) && cJSON_GetArraySize(cmd) > 0;
    cJSON_ArrayForEach(it, cmd) strings = strings && cJSON_IsString(it);
    if (!strings) {
        add(l, HA_SEV_ERROR, "healthcheck-command", path,
            "write [\"CMD\", \"/path/to/binary\", \"arg\"...] (exec form, no shell needed)",
            "must be a non-empty list of strings");
    } else {
        const char *k = cmd->child->valuestring;
        int n = cJSON_GetArraySize(cmd);
        if (strcmp(k, "CMD") == 0 && n >= 2 && cmd->child->next->valuestring[0]) {
            c->hc_kind = "CMD";
        } else if (strcmp(k, "CMD-SHELL") == 0 && n >= 2 && cmd->child->next->valuestring[0]) {
            c->hc_kind = "CMD-SHELL";
        } else if (strcmp(k, "NONE") == 0) {
            c->hc = NULL; /* the check is disabled: as if absent */
            return;
        } else if (strcmp(k, "CMD") == 0 || strcmp(k, "CMD-SHELL") == 0) {
            add(l, HA_SEV_ERROR, "healthcheck-command", path,
                "add the command after it, e.g. [\"CMD\", \"/healthagg\", \"probe\"]",
                "%s with no command to run", k);
        } else {
            add(l, HA_SEV_ERROR, "healthcheck-command", path,
                "start the list with \"CMD\" (exec form) or \"CMD-SHELL\" (needs /bin/sh in the "
                "image)",
                "the first element is \"%.60s\", but Docker knows only CMD, CMD-SHELL and NONE", k);
        }
    }
    hv->interval = hc_int(l, c, "interval", 30, 5, 300, "healthcheck-interval", "seconds");
    hv->timeout = hc_int(l, c, "timeout", 5, 2, 60, "healthcheck-timeout", "seconds");
    hv->retries = hc_int(l, c, "retries", 3, 1, 10, "healthcheck-retries", "retries");
    hv->start_period =
        hc_int(l, c, "startPeriod", 0, 0, 300, "healthcheck-start-period", "seconds");
    /* An out-of-range value is reported once; the arithmetic below uses ECS's defaults. */
    bool comparable = hv->timeout >= 0 && hv->interval >= 0;
    if (hv->interval < 0)
        hv->interval = 30;
    if (hv->timeout < 0)
        hv->timeout = 5;
    if (hv->retries < 0)
        hv->retries = 3;
    if (hv->start_period < 0)
        hv->start_period = 0;
    if (comparable && hv->timeout >= hv->interval) {
        pathf(path, sizeof(path), "%s.healthCheck.timeout", c->path);
        add(l, HA_SEV_ERROR, "healthcheck-timeout", path,
            "make the timeout shorter than the interval",
            "timeout %ds is not shorter than interval %ds: a slow check overlaps the next one",
            hv->timeout, hv->interval);
    }
}

/* ------------------------------------------------------------------------------------------
 * The image: the health check's command must exist in it
 * ------------------------------------------------------------------------------------------ */
static const char *img_desc(const ctr *c, char *buf, size_t len)
{
    pathf(buf, len, "%s (%s, %s)", c->img->path, c->img->img.kind, c->img->img.platform);
    return buf;
}

/* Why a resolved path is not a usable executable, or NULL when it is one. */
static const char *not_executable(const ha_fsview *fs, const char *path, char *why, size_t len)
{
    ha_fs_lookup lk;
    ha_fs_resolve(fs, path, &lk);
    const char *via = lk.via[0] ? lk.via : NULL;
    switch (lk.status) {
    case HA_FS_MISSING:
        if (via)
            pathf(why, len, "%s is a symlink (%s) and %s does not exist in the image", path, via,
                  lk.missing);
        else if (strcmp(lk.missing, path) == 0)
            pathf(why, len, "%s does not exist in the image", path);
        else
            pathf(why, len, "%s does not exist in the image (there is no %s)", path, lk.missing);
        return why;
    case HA_FS_NOTDIR:
        pathf(why, len, "%s cannot exist: %s is not a directory", path, lk.missing);
        return why;
    case HA_FS_LOOP:
        pathf(why, len, "%s is a symlink loop (at %s)", path, lk.missing);
        return why;
    case HA_FS_FOUND:
        break;
    }
    if (lk.node->type != HA_FS_FILE) {
        pathf(why, len, "%s%s%s is a %s, not a file", path, via ? " -> " : "",
              via ? lk.resolved : "", lk.node->type == HA_FS_DIR ? "directory" : "device");
        return why;
    }
    if (!(lk.node->mode & 0111)) {
        pathf(why, len, "%s%s%s is not executable (mode %04o)", path, via ? " -> " : "",
              via ? lk.resolved : "", lk.node->mode);
        return why;
    }
    return NULL;
}

/* Looks NAME up like execvp on the given PATH; 0 when found executable (full path in out). */
static int search_path(const ha_fsview *fs, const char *pathvar, const char *name, char *out,
                       size_t len)
{
    const char *p = pathvar;
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t dl = colon ? (size_t)(colon - p) : strlen(p);
        if (dl > 0 && p[0] == '/') {
            char why[64];
            pathf(out, len, "%.*s/%s", (int)dl, p, name);
            if (!not_executable(fs, out, why, sizeof(why)))
                return 0;
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    return -1;
}

static const char *effective_path(const ctr *c)
{
    const char *p = env_value(c, "PATH", NULL);
    if (p)
        return p;
    return c->img->img.path_env ? c->img->img.path_env : DEFAULT_PATH;
}

/* The first word a shell would run: skips VAR=value prefixes and `exec`; NULL for builtins and
 * anything lint does not try to parse (quotes, substitutions, compound commands). */
static const char *shell_first_word(const char *cmd, char *out, size_t len)
{
    static const char *const builtins[] = {"exit", "test",  "[",       "echo", "true", "false",
                                           ":",    "cd",    "printf",  "read", "set",  "export",
                                           "if",   "while", "until",   "for",  "case", "!",
                                           "{",    "(",     "command", "eval", NULL};
    const char *p = cmd;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, " \t;|&<>()");
        if (n == 0 || n >= len)
            return NULL;
        memcpy(out, p, n);
        out[n] = '\0';
        if (strpbrk(out, "\"'`$\\*?"))
            return NULL;
        if (strchr(out, '=') || strcmp(out, "exec") == 0) {
            p += n;
            continue;
        }
        for (size_t i = 0; builtins[i]; i++)
            if (strcmp(out, builtins[i]) == 0)
                return NULL;
        return out;
    }
}

static void check_image_command(lint *l, const ctr *c)
{
    char path[160], why[1200], desc[600], found[1024];
    pathf(path, sizeof(path), "%s.healthCheck.command", c->path);
    const cJSON *cmd = get(c->hc, "command");
    const char *arg1 = cmd->child->next->valuestring;
    const ha_fsview *fs = &c->img->img.fs;
    const char *pv = effective_path(c);
    if (strcmp(c->hc_kind, "CMD-SHELL") == 0) {
        if (not_executable(fs, "/bin/sh", why, sizeof(why))) {
            add(l, HA_SEV_ERROR, "image-no-shell", path,
                "use the exec form [\"CMD\", BINARY, ARGS...] with a binary the image has, or "
                "let a healthagg sidecar carry the check ([\"CMD\", \"/healthagg\", \"probe\"])",
                "CMD-SHELL runs /bin/sh -c inside the image, but in %s, %s: the check can never "
                "run and ECS marks the container UNHEALTHY",
                img_desc(c, desc, sizeof(desc)), why);
            return;
        }
        char word[256];
        const char *w = shell_first_word(arg1, word, sizeof(word));
        if (!w)
            return;
        if (strchr(w, '/')) {
            char abs[600];
            pathf(abs, sizeof(abs), "%s%s", w[0] == '/' ? "" : "/", w);
            if (not_executable(fs, abs, why, sizeof(why)))
                add(l, HA_SEV_WARNING, "image-shell-command-missing", path,
                    "use a program the image has, or healthagg (`healthagg check URL`)",
                    "the shell command runs %s, but %s", w, why);
        } else if (search_path(fs, pv, w, found, sizeof(found)) != 0) {
            add(l, HA_SEV_WARNING, "image-shell-command-missing", path,
                "install it in the image, or use a binary it has (healthagg's `check URL` "
                "replaces curl)",
                "the shell command starts with \"%s\", which is not an executable on the "
                "image's PATH (%s) in %s: the check will always fail",
                w, pv, img_desc(c, desc, sizeof(desc)));
        }
        return;
    }
    /* CMD: argv[0] is executed directly; a relative name is looked up on PATH. */
    if (strchr(arg1, '/')) {
        char abs[600];
        pathf(abs, sizeof(abs), "%s%s", arg1[0] == '/' ? "" : "/", arg1);
        if (not_executable(fs, abs, why, sizeof(why)))
            add(l, HA_SEV_ERROR, "image-cmd-missing", path,
                "point the command at a binary the image has",
                "the health check runs %s, but in %s, %s: the check can never run", arg1,
                img_desc(c, desc, sizeof(desc)), why);
    } else if (search_path(fs, pv, arg1, found, sizeof(found)) != 0) {
        add(l, HA_SEV_ERROR, "image-cmd-missing", path,
            "use an absolute path to a binary the image has",
            "the health check runs \"%s\", which is not an executable on the image's PATH (%s) "
            "in %s: the check can never run",
            arg1, pv, img_desc(c, desc, sizeof(desc)));
    }
}

static void check_shell_by_name(lint *l, const ctr *c)
{
    char path[160], fix[256];
    pathf(path, sizeof(path), "%s.healthCheck.command", c->path);
    const char *why = shellless_reason(c->image);
    if (why) {
        add(l, HA_SEV_ERROR, "cmd-shell-no-shell", path,
            "use the exec form [\"CMD\", BINARY, ARGS...], or let a healthagg sidecar carry the "
            "check ([\"CMD\", \"/healthagg\", \"probe\"])",
            "CMD-SHELL runs /bin/sh -c inside the image, and %s (%s): the check can never run "
            "and ECS marks the container UNHEALTHY",
            c->image, why);
        return;
    }
    if (has_shell_known(c->image))
        return;
    pathf(fix, sizeof(fix),
          "prove it with --image %s=IMAGE.tar (from docker save, ko build --tarball or crane "
          "pull), or use the exec form",
          c->name);
    add(l, HA_SEV_WARNING, "cmd-shell-unverified", path, fix,
        "CMD-SHELL needs /bin/sh and the command it runs inside %s, which the task definition "
        "cannot show (ko, distroless and scratch images have no shell)",
        c->image);
}

/* ------------------------------------------------------------------------------------------
 * The healthagg sidecar
 * ------------------------------------------------------------------------------------------ */
static bool is_sidecar(const ctr *c)
{
    char repo[512];
    image_repo(c->image, repo, sizeof(repo));
    const char *last = strrchr(repo, '/');
    if (strstr(last ? last + 1 : repo, "healthagg"))
        return true;
    return env_value(c, "HEALTHAGG_CONFIG", NULL) || env_value(c, "HEALTHAGG_CONFIG_FILE", NULL) ||
           env_value(c, "HEALTHAGG_LISTEN", NULL);
}

/* ${VAR} in the sidecar's config (gRPC metadata) expands from its environment at start; in ECS
 * that holds the container's `environment` and `secrets` entries. For the validation, each name
 * the task defines (and this process lacks) gets a stand-in value; the caller unsets them after.
 * A variable the task does not define stays unset and is reported as healthagg would. */
static size_t task_env_stand_ins(const ctr *c, const char **set, size_t max)
{
    static const char *const lists[] = {"environment", "secrets"};
    size_t n = 0;
    for (size_t k = 0; k < 2; k++) {
        const cJSON *e;
        cJSON_ArrayForEach(e, get(c->j, lists[k]))
        {
            const char *name = get_str(e, "name");
            if (n < max && name && name[0] && !strchr(name, '=') &&
                strncmp(name, "HEALTHAGG_", 10) != 0 && !getenv(name) &&
                setenv(name, "(defined by the task)", 0) == 0)
                set[n++] = name;
        }
    }
    return n;
}

static bool is_loopback(const char *host)
{
    return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 ||
           strcmp(host, "::1") == 0;
}

/* Does check k probe container c? Its "container" key says so; otherwise its host and port
 * (the validator has filled in the scheme's default port). */
static bool targets(const lint *l, const ha_check_config *k, const ctr *c)
{
    if (k->container[0])
        return strcmp(k->container, c->name) == 0;
    if (strcmp(k->url.host, c->name) == 0)
        return true;
    if (!l->awsvpc || !is_loopback(k->url.host))
        return false;
    for (size_t i = 0; i < c->nports; i++)
        if (c->ports[i] == k->url.port)
            return true;
    return false;
}

static void check_network(lint *l, const ctr *s, const char *path);

static void check_sidecar(lint *l, ctr *s, const hc_values *hv)
{
    char path[160];
    if (!s->essential) {
        pathf(path, sizeof(path), "%s.essential", s->path);
        add(l, HA_SEV_ERROR, "sidecar-essential", path, "set \"essential\": true",
            "the healthagg sidecar is not essential: ECS ignores the health of non-essential "
            "containers, so its verdict never reaches the task");
    }
    if (!s->hc) {
        pathf(path, sizeof(path), "%s", s->path);
        add(l, HA_SEV_ERROR, "sidecar-healthcheck", path,
            "add \"healthCheck\": {\"command\": [\"CMD\", \"/healthagg\", \"probe\"]}",
            "the healthagg sidecar has no healthCheck: ECS never asks it, and the task's health "
            "is never known");
    } else if (s->hc_kind) {
        const cJSON *cmd = get(s->hc, "command"), *a;
        const char *argv0 = cmd->child->next->valuestring;
        const char *base = strrchr(argv0, '/');
        base = base ? base + 1 : argv0;
        bool probe = false;
        for (a = cmd->child->next->next; a; a = a->next) {
            probe = probe || strcmp(a->valuestring, "probe") == 0;
            if (probe && strcmp(a->valuestring, "--group") == 0 && a->next)
                l->probe_group = a->next->valuestring;
            else if (probe && strncmp(a->valuestring, "--group=", 8) == 0)
                l->probe_group = a->valuestring + 8;
        }
        pathf(path, sizeof(path), "%s.healthCheck.command", s->path);
        if (strcmp(s->hc_kind, "CMD") != 0 || strcmp(base, "healthagg") != 0 || !probe)
            add(l, HA_SEV_ERROR, "sidecar-healthcheck", path,
                "use [\"CMD\", \"/healthagg\", \"probe\"]",
                "the healthagg sidecar's health check must be the exec form `healthagg probe`, "
                "which asks the running sidecar (healthagg's image has no shell)");
    }

    int ci = -1, fi = -1;
    const char *inline_cfg = env_value(s, "HEALTHAGG_CONFIG", &ci);
    const char *file_cfg = env_value(s, "HEALTHAGG_CONFIG_FILE", &fi);
    if (inline_cfg && file_cfg) {
        pathf(path, sizeof(path), "%s.environment[%d]", s->path, fi);
        add(l, HA_SEV_ERROR, "sidecar-config", path, "keep one of the two",
            "both HEALTHAGG_CONFIG and HEALTHAGG_CONFIG_FILE are set: healthagg refuses to start");
    }
    const char *listen = env_value(s, "HEALTHAGG_LISTEN", &fi);
    if (listen) {
        char host[64], msg[HA_ERR_MAX];
        uint16_t port;
        if (ha_parse_listen(listen, host, sizeof(host), &port, msg, sizeof(msg)) != 0) {
            pathf(path, sizeof(path), "%s.environment[%d].value", s->path, fi);
            add(l, HA_SEV_ERROR, "sidecar-config", path, "use ADDR:PORT, e.g. 127.0.0.1:8099",
                "HEALTHAGG_LISTEN: %s", msg);
        }
    }
    if (!inline_cfg)
        return;
    pathf(path, sizeof(path), "%s.environment[%d].value", s->path, ci);
    char err[HA_ERR_MAX * 2];
    const char *stand_ins[64];
    size_t nstand = task_env_stand_ins(s, stand_ins, sizeof(stand_ins) / sizeof(stand_ins[0]));
    int rc = ha_config_parse_json(inline_cfg, strlen(inline_cfg), "HEALTHAGG_CONFIG", &l->cfg, err,
                                  sizeof(err));
    for (size_t i = 0; i < nstand; i++)
        unsetenv(stand_ins[i]);
    if (rc != 0) {
        const char *p = strncmp(err, "HEALTHAGG_CONFIG", 16) == 0 ? err : NULL;
        add(l, HA_SEV_ERROR, "sidecar-config", path,
            "fix the value; `HEALTHAGG_CONFIG='...' healthagg validate` checks it",
            "%s%s (healthagg would exit 2 at start)", p ? "" : "HEALTHAGG_CONFIG ", err);
        return;
    }
    l->cfg_ok = true;
    check_network(l, s, path);
    if (l->probe_group) {
        int g = ha_config_group_find(&l->cfg, l->probe_group, strlen(l->probe_group));
        if (g < 0) {
            pathf(path, sizeof(path), "%s.healthCheck.command", s->path);
            add(l, HA_SEV_ERROR, "sidecar-group", path,
                "add \"groups\": [\"<the group>\"] to the checks it should judge, or fix the name",
                "the health check asks `probe --group %s`, but no check of HEALTHAGG_CONFIG is in "
                "group \"%s\": the sidecar answers 404 and every probe fails",
                l->probe_group, l->probe_group);
            l->probe_group = NULL; /* judge the rest as if it asked for every check */
        } else {
            l->gate_mask = 1ull << g;
        }
    }

    /* start-period: ECS gives up on the sidecar at startPeriod + retries x interval; healthagg
     * may need start_period + failure_threshold x interval to reach its first verdict. */
    if (!s->hc || !s->hc_kind)
        return;
    uint64_t need_ms = 0;
    const ha_check_config *worst = NULL;
    for (size_t i = 0; i < l->cfg.n_checks; i++) {
        const ha_check_config *k = &l->cfg.checks[i];
        uint64_t t = k->start_period_ms + (uint64_t)k->failure_threshold * k->interval_ms;
        if (k->critical && gates(l, k) && t > need_ms) {
            need_ms = t;
            worst = k;
        }
    }
    uint64_t ecs_ms =
        ((uint64_t)hv->start_period + (uint64_t)hv->retries * (uint64_t)hv->interval) * 1000;
    if (worst && need_ms > ecs_ms) {
        char sp[32], iv[32], fix[200];
        ha_format_duration(worst->start_period_ms, sp, sizeof(sp));
        ha_format_duration(worst->interval_ms, iv, sizeof(iv));
        uint64_t want =
            (need_ms - (uint64_t)hv->retries * (uint64_t)hv->interval * 1000 + 999) / 1000;
        if (want <= 300)
            pathf(fix, sizeof(fix), "raise startPeriod to at least %llu", (unsigned long long)want);
        else
            pathf(fix, sizeof(fix),
                  "lower healthagg's start_period (ECS's startPeriod stops at 300)");
        pathf(path, sizeof(path), "%s.healthCheck.startPeriod", s->path);
        add(l, HA_SEV_WARNING, "start-period-short", path, fix,
            "ECS marks the sidecar UNHEALTHY after startPeriod %ds + retries %d x interval %ds "
            "= %llus, but healthagg's check \"%s\" may need start_period %s + "
            "failure_threshold %u x interval %s = %llus to reach its first verdict while the "
            "app starts: the task is replaced before healthagg has decided",
            hv->start_period, hv->retries, hv->interval, (unsigned long long)(ecs_ms / 1000),
            worst->name, sp, worst->failure_threshold, iv,
            (unsigned long long)((need_ms + 999) / 1000));
    }
}

static bool linked(const ctr *s, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, get(s->j, "links"))
    {
        if (!cJSON_IsString(it))
            continue;
        const char *v = it->valuestring, *colon = strchr(v, ':');
        size_t n = strlen(name);
        /* "app" or "app:alias": the container; "x:app": app is the alias of x */
        if ((!strncmp(v, name, n) && (v[n] == '\0' || v[n] == ':')) ||
            (colon && !strcmp(colon + 1, name)))
            return true;
    }
    return false;
}

/* Whether each check can reach what it means to: in awsvpc (and host) mode the task shares
 * one localhost and container names do not resolve; in bridge mode every container has its own
 * localhost and reaches another only through `links`. */
static void check_network(lint *l, const ctr *s, const char *path)
{
    for (size_t i = 0; i < l->cfg.n_checks; i++) {
        const ha_check_config *k = &l->cfg.checks[i];
        const ctr *named = NULL, *by_port = NULL;
        for (size_t j = 0; j < l->n; j++) {
            const ctr *c = &l->c[j];
            if (c == s)
                continue;
            if (strcmp(k->url.host, c->name) == 0)
                named = c;
            for (size_t p = 0; p < c->nports && !by_port; p++)
                if (c->ports[p] == k->url.port && is_loopback(k->url.host))
                    by_port = c;
        }
        bool own_port = false;
        for (size_t p = 0; p < s->nports; p++)
            own_port = own_port || s->ports[p] == k->url.port;
        if (l->awsvpc && named) {
            add(l, HA_SEV_ERROR, "sidecar-network", path,
                "use 127.0.0.1 and the container's port: the task shares one localhost",
                "HEALTHAGG_CONFIG checks[%zu] (\"%s\", %s) names container \"%s\" as a host, "
                "but in awsvpc mode container names do not resolve",
                i, k->name, k->url_text, named->name);
        } else if (!l->awsvpc && named && !linked(s, named->name)) {
            char fix[160];
            pathf(fix, sizeof(fix), "add \"links\": [\"%s\"] to the healthagg container",
                  named->name);
            add(l, HA_SEV_ERROR, "sidecar-network", path, fix,
                "HEALTHAGG_CONFIG checks[%zu] (\"%s\", %s) names container \"%s\", which "
                "healthagg can resolve in bridge mode only through links",
                i, k->name, k->url_text, named->name);
        } else if (!l->awsvpc && by_port && !own_port) {
            char fix[200];
            pathf(fix, sizeof(fix),
                  "probe http://%s:%u/ with \"links\": [\"%s\"], or use networkMode awsvpc",
                  by_port->name, k->url.port, by_port->name);
            add(l, HA_SEV_ERROR, "sidecar-network", path, fix,
                "HEALTHAGG_CONFIG checks[%zu] (\"%s\", %s) probes localhost port %u of "
                "\"%s\", but in bridge mode each container has its own localhost: the check "
                "reaches healthagg's own container",
                i, k->name, k->url_text, k->url.port, by_port->name);
        }
    }
}

/* Marks which containers the sidecar's checks probe. */
static void mark_probed(lint *l)
{
    if (!l->cfg_ok)
        return;
    for (size_t i = 0; i < l->cfg.n_checks; i++) {
        const ha_check_config *k = &l->cfg.checks[i];
        for (size_t j = 0; j < l->n; j++) {
            if ((int)j == l->sidecar || !targets(l, k, &l->c[j]))
                continue;
            l->c[j].probed = true;
            if (k->critical && gates(l, k)) /* the health check ignores checks outside its group */
                l->c[j].probed_critical = true;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * dependsOn
 * ------------------------------------------------------------------------------------------ */
static int find_ctr(const lint *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->c[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void check_depends(lint *l, ctr *c)
{
    const cJSON *deps = get(c->j, "dependsOn"), *d;
    int i = 0;
    cJSON_ArrayForEach(d, deps)
    {
        char path[160];
        pathf(path, sizeof(path), "%s.dependsOn[%d]", c->path, i++);
        const char *name = get_str(d, "containerName"), *cond = get_str(d, "condition");
        if (!name || !cond) {
            add(l, HA_SEV_ERROR, "dependson-unknown", path,
                "write {\"containerName\": NAME, \"condition\": \"START\"}",
                "needs a containerName and a condition");
            continue;
        }
        int t = find_ctr(l, name);
        if (t < 0) {
            char known[512] = "";
            for (size_t k = 0; k < l->n; k++) {
                size_t o = strlen(known);
                pathf(known + o, sizeof(known) - o, "%s%s", k ? ", " : "", l->c[k].name);
            }
            char fix[600];
            pathf(fix, sizeof(fix), "use one of: %s", known);
            add(l, HA_SEV_ERROR, "dependson-unknown", path, fix,
                "no container named \"%s\" in this task definition", name);
            continue;
        }
        const ctr *tc = &l->c[t];
        char cpath[180];
        pathf(cpath, sizeof(cpath), "%s.condition", path);
        if (strcmp(cond, "START") && strcmp(cond, "COMPLETE") && strcmp(cond, "SUCCESS") &&
            strcmp(cond, "HEALTHY")) {
            add(l, HA_SEV_ERROR, "dependson-condition", cpath,
                "use START, COMPLETE, SUCCESS or HEALTHY", "\"%s\" is not a dependsOn condition",
                cond);
        } else if ((!strcmp(cond, "COMPLETE") || !strcmp(cond, "SUCCESS")) && tc->essential) {
            add(l, HA_SEV_ERROR, "dependson-complete-essential", cpath,
                "mark the container essential: false, or wait for START or HEALTHY",
                "%s on \"%s\", an essential container: when it exits the whole task stops, so "
                "nothing can start after it",
                cond, name);
        } else if (!strcmp(cond, "HEALTHY") && !tc->hc) {
            add(l, HA_SEV_ERROR, "dependson-healthy-no-check", cpath,
                "give that container a healthCheck, or use START",
                "HEALTHY on \"%s\", which has no healthCheck: it never becomes HEALTHY and this "
                "container never starts",
                name);
        } else if (!strcmp(cond, "HEALTHY") && t == l->sidecar && c->probed_critical) {
            add(l, HA_SEV_ERROR, "sidecar-deadlock", cpath,
                "use \"condition\": \"START\" (or make healthagg's checks of it \"critical\": "
                "false)",
                "\"%s\" waits for healthagg to be HEALTHY, but healthagg turns healthy only once "
                "its critical check of \"%s\" passes: neither ever starts",
                c->name, c->name);
        }
    }
}

/* Depth-first search over dependsOn; reports each cycle once, at the container closing it. */
static bool cycle_from(lint *l, int i, int *stack, int depth)
{
    ctr *c = &l->c[i];
    c->color = 1;
    stack[depth] = i;
    const cJSON *d;
    int k = 0;
    cJSON_ArrayForEach(d, get(c->j, "dependsOn"))
    {
        const char *name = get_str(d, "containerName");
        int t = name ? find_ctr(l, name) : -1;
        k++;
        if (t < 0)
            continue;
        if (l->c[t].color == 1) {
            char chain[600] = "", path[160];
            int from = depth;
            while (from > 0 && stack[from] != t)
                from--;
            for (int s = from; s <= depth; s++) {
                size_t o = strlen(chain);
                pathf(chain + o, sizeof(chain) - o, "%s -> ", l->c[stack[s]].name);
            }
            size_t o = strlen(chain);
            pathf(chain + o, sizeof(chain) - o, "%s", l->c[t].name);
            pathf(path, sizeof(path), "%s.dependsOn[%d]", c->path, k - 1);
            add(l, HA_SEV_ERROR, "dependson-cycle", path, "remove one of these dependencies",
                "dependsOn cycle %s: none of them can start", chain);
            return true;
        }
        if (l->c[t].color == 0 && depth + 1 < MAX_CONTAINERS && cycle_from(l, t, stack, depth + 1))
            return true;
    }
    c->color = 2;
    return false;
}

/* ------------------------------------------------------------------------------------------
 * The task definition
 * ------------------------------------------------------------------------------------------ */
static void collect_ports(ctr *c)
{
    const cJSON *pm;
    cJSON_ArrayForEach(pm, get(c->j, "portMappings"))
    {
        const char *keys[] = {"containerPort", "hostPort"};
        for (int k = 0; k < 2; k++) {
            const cJSON *v = get(pm, keys[k]);
            if (cJSON_IsNumber(v) && v->valueint > 0 && c->nports < MAX_PORTS)
                c->ports[c->nports++] = (unsigned)v->valueint;
        }
    }
}

void ha_lint_taskdef(const cJSON *root, ha_lint_image *images, size_t nimages, ha_findings *out)
{
    lint *l = calloc(1, sizeof(*l));
    if (!l) {
        out->oom = true;
        return;
    }
    l->out = out;
    l->sidecar = -1;
    l->td = root;
    const cJSON *inner = get(root, "taskDefinition");
    if (cJSON_IsObject(inner)) {
        l->td = inner;
        strcpy(l->prefix, "taskDefinition.");
    }
    const cJSON *defs = get(l->td, "containerDefinitions");
    char path[160];
    pathf(path, sizeof(path), "%scontainerDefinitions", l->prefix);
    if (!cJSON_IsArray(defs) || cJSON_GetArraySize(defs) == 0) {
        add(l, HA_SEV_ERROR, "taskdef-shape", path,
            "give the RegisterTaskDefinition JSON or `aws ecs describe-task-definition` output",
            "missing or empty: this is not an ECS task definition");
        goto out;
    }
    const char *nm = get_str(l->td, "networkMode");
    const cJSON *compat = get(l->td, "requiresCompatibilities"), *it;
    bool fargate = false;
    cJSON_ArrayForEach(it, compat) fargate =
        fargate || (cJSON_IsString(it) && strcmp(it->valuestring, "FARGATE") == 0);
    l->awsvpc = nm ? (strcmp(nm, "awsvpc") == 0 || strcmp(nm, "host") == 0) : fargate;

    int idx = 0;
    const cJSON *cd;
    cJSON_ArrayForEach(cd, defs)
    {
        char cpath[96];
        pathf(cpath, sizeof(cpath), "%scontainerDefinitions[%d]", l->prefix, idx++);
        const char *name = get_str(cd, "name"), *image = get_str(cd, "image");
        if (!name || !image) {
            add(l, HA_SEV_ERROR, "taskdef-shape", cpath, "every container needs both",
                "a container without a \"name\" or \"image\" string");
            continue;
        }
        if (find_ctr(l, name) >= 0) {
            char p2[120];
            pathf(p2, sizeof(p2), "%s.name", cpath);
            add(l, HA_SEV_ERROR, "taskdef-shape", p2, "give each container its own name",
                "\"%s\" is used by two containers", name);
            continue;
        }
        if (l->n == MAX_CONTAINERS)
            break;
        ctr *c = &l->c[l->n++];
        c->j = cd;
        c->name = name;
        c->image = image;
        pathf(c->path, sizeof(c->path), "%s", cpath);
        const cJSON *ess = get(cd, "essential");
        c->essential = !cJSON_IsFalse(ess);
        const cJSON *hc = get(cd, "healthCheck");
        c->hc = cJSON_IsObject(hc) ? hc : NULL;
        c->sidecar = is_sidecar(c);
        collect_ports(c);
        for (size_t k = 0; k < nimages; k++)
            if (strcmp(images[k].container, name) == 0) {
                c->img = &images[k];
                images[k].used = true;
            }
    }

    hc_values sidecar_hv = {30, 5, 3, 0};
    for (size_t i = 0; i < l->n; i++) {
        ctr *c = &l->c[i];
        hc_values hv = {30, 5, 3, 0};
        if (c->hc)
            check_hc_shape(l, c, &hv);
        if (c->sidecar && l->sidecar < 0) {
            l->sidecar = (int)i;
            sidecar_hv = hv;
        }
        if (c->hc && c->hc_kind) {
            if (c->img && c->img->loaded)
                check_image_command(l, c);
            else if (strcmp(c->hc_kind, "CMD-SHELL") == 0)
                check_shell_by_name(l, c);
        }
        if (c->img && c->img->loaded && c->img->img.healthcheck && !c->hc)
            add(l, HA_SEV_WARNING, "image-healthcheck-ignored", c->path,
                "copy it into the container's \"healthCheck\" (in exec form) if it should run",
                "the image %s defines HEALTHCHECK %s, which ECS ignores: only the task "
                "definition's healthCheck runs, and this container has none",
                c->img->path, c->img->img.healthcheck);
    }
    if (l->sidecar >= 0) {
        check_sidecar(l, &l->c[l->sidecar], &sidecar_hv);
        mark_probed(l);
    }
    for (size_t i = 0; i < l->n; i++)
        check_depends(l, &l->c[i]);
    int stack[MAX_CONTAINERS];
    for (size_t i = 0; i < l->n; i++)
        if (l->c[i].color == 0 && cycle_from(l, (int)i, stack, 0))
            break;
    if (l->sidecar >= 0 && l->cfg_ok) {
        for (size_t i = 0; i < l->n; i++) {
            const ctr *c = &l->c[i];
            if ((int)i == l->sidecar || !c->essential || c->hc || c->probed)
                continue;
            char fix[300];
            if (c->nports && l->awsvpc)
                pathf(fix, sizeof(fix),
                      "add a healthagg check of it (e.g. {\"name\": \"%s\", \"url\": "
                      "\"tcp://127.0.0.1:%u\"}) or give it a healthCheck",
                      c->name, c->ports[0]);
            else
                pathf(fix, sizeof(fix),
                      "give it a healthCheck, add a healthagg check with \"container\": \"%s\", "
                      "or mark it essential: false",
                      c->name);
            add(l, HA_SEV_WARNING, "essential-unmonitored", c->path, fix,
                "essential container \"%s\" has no healthCheck and no healthagg check probes it: "
                "if it hangs, nothing notices",
                c->name);
        }
    }
out:
    if (l->cfg_ok)
        ha_config_free(&l->cfg);
    free(l);
}
