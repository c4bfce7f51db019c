/* check_file.c - file:// checks: a path exists and, with `max_age`, was modified recently.
 *
 * For workers without an HTTP port: they touch a file on a volume shared in the task (a
 * heartbeat) and this check reads its mtime. The stat() runs on the loop thread. That is a
 * deliberate trade-off: stat on a local filesystem (the task's bind mounts and volumes) is a
 * metadata lookup of microseconds and never blocks on the network; moving it to a thread would
 * bring back the thread pool whose starvation the resolver work removed. A file on a network
 * filesystem (EFS) could stall the loop, which the README warns about. */
#include "healthagg/check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct file_cfg {
    uint64_t max_age_ms; /* 0: existence is enough */
} file_cfg;

static const char *const file_keys[] = {"max_age", NULL};

static int file_parse(ha_check_config *c, const ha_key_source *src)
{
    file_cfg *f = c->type_cfg;
    if (ha_key_duration(src, "max_age", &f->max_age_ms) < 0)
        return -1;
    return 0;
}

static void file_describe(const ha_check_config *c, cJSON *out)
{
    const file_cfg *f = c->type_cfg;
    if (f->max_age_ms) {
        char d[32];
        ha_format_duration(f->max_age_ms, d, sizeof(d));
        cJSON_AddStringToObject(out, "max_age", d);
    }
}

static void file_start(ha_probe *p)
{
    const file_cfg *f = p->cfg->type_cfg;
    const char *path = p->cfg->url.path;
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            ha_probe_finish(p, false, 0, "no such file: %s", path);
        else
            ha_probe_finish(p, false, 0, "stat %s: %s", path, strerror(e));
        return;
    }
    if (!f->max_age_ms) {
        ha_probe_finish(p, true, 0, "exists: %s", path);
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age_ms = ((int64_t)now.tv_sec - (int64_t)st.st_mtim.tv_sec) * 1000 +
                     ((int64_t)now.tv_nsec - (int64_t)st.st_mtim.tv_nsec) / 1000000;
    char max[32], age[32];
    ha_format_duration(f->max_age_ms, max, sizeof(max));
    if (age_ms < 0)
        age_ms = 0; /* a clock step, or a writer in the future: fresh enough */
    if ((uint64_t)age_ms > f->max_age_ms) {
        snprintf(age, sizeof(age), "%llds", (long long)(age_ms / 1000));
        ha_probe_finish(p, false, 0, "stale: modified %s ago (max_age %s)", age, max);
        return;
    }
    snprintf(age, sizeof(age), "%lld.%llds", (long long)(age_ms / 1000),
             (long long)(age_ms % 1000 / 100));
    ha_probe_finish(p, true, 0, "fresh: modified %s ago (max_age %s)", age, max);
}

static void file_unused(ha_probe *p)
{
    (void)p;
}

static void file_unused_data(ha_probe *p, const char *data, size_t len)
{
    (void)p;
    (void)data;
    (void)len;
}

const ha_check_type ha_check_file = {
    .name = "file",
    .keys = file_keys,
    .cfg_size = sizeof(file_cfg),
    .parse = file_parse,
    .describe = file_describe,
    .start = file_start,
    .on_connected = file_unused,
    .on_data = file_unused_data,
    .on_eof = file_unused,
};
