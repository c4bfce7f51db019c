/* fuzz_config.c - libFuzzer target for configuration parsing (src/config.c, src/parse.c).
 *
 * Per input:
 *   1. ha_config_parse_json() on the raw bytes (not NUL-terminated: a read past the end is an
 *      ASan report). A config it accepts must satisfy what the rest of the daemon assumes.
 *   2. The input, NUL-terminated and split on '\n', is fed slice by slice to ha_parse_url,
 *      ha_parse_duration, ha_parse_status_range, ha_parse_listen and ha_parse_uint, with
 *      round-trip checks where a formatter exists.
 *   3. The slices as `--check [NAME=]URL` flags plus flag-style durations through
 *      ha_config_load() (flags only; no file, no environment).
 * Every rejection must leave a non-empty error message. */
#include "healthagg/check_type.h"
#include "healthagg/config.h"
#include "healthagg/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SLICES 8

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_config: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void expect_err(const char *err, const char *what)
{
    if (memchr(err, '\0', HA_ERR_MAX) == NULL || err[0] == '\0')
        die("a rejection without an error message", what);
}

static void check_config(const ha_config *c)
{
    if (c->n_checks == 0 || !c->checks)
        die("an accepted config without checks", NULL);
    if (c->limits.request_timeout_ms == 0 || c->limits.idle_timeout_ms == 0 ||
        c->limits.max_connections == 0 || c->limits.max_requests_per_connection == 0)
        die("an accepted config with a zero server limit", NULL);
    for (size_t i = 0; i < c->n_checks; i++) {
        const ha_check_config *k = &c->checks[i];
        if (!k->name[0])
            die("an accepted check without a name", NULL);
        if (k->timeout_ms >= k->interval_ms || k->interval_ms < 100)
            die("an accepted check with timeout >= interval", k->name);
        if (k->failure_threshold < 1 || k->success_threshold < 1)
            die("an accepted check with a zero threshold", k->name);
        if (!k->row || (k->row->type->cfg_size && !k->type_cfg))
            die("an accepted check without its type's config", k->name);
        if (k->row->transport && k->url.port == 0)
            die("an accepted network check with port 0", k->name);
        if (k->url.path[0] != '/')
            die("an accepted check whose path does not start with '/'", k->name);
        if (k->row->transport) {
            /* The type's effective settings must always render (the startup log does this). */
            cJSON *o = cJSON_CreateObject();
            if (o) {
                ha_check_describe(k, o);
                char *t = cJSON_PrintUnformatted(o);
                cJSON_free(t);
                cJSON_Delete(o);
            }
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->checks[j].name, k->name) == 0)
                die("two accepted checks with the same name", k->name);
    }
}

static void parse_slice(const char *s)
{
    char err[HA_ERR_MAX];
    ha_url url;
    err[0] = '\0';
    if (ha_parse_url(s, &url, err, sizeof(err)) == 0) {
        bool file = strcmp(url.scheme, "file") == 0;
        if (!file && !url.host[0])
            die("an accepted URL without a host", s);
        if (url.path[0] != '/')
            die("an accepted URL whose path does not start with '/'", s);
        ha_check_config probe_cfg;
        memset(&probe_cfg, 0, sizeof(probe_cfg));
        if (ha_check_parse_url(&probe_cfg, s, err, sizeof(err)) == 0) {
            if (probe_cfg.row->transport && probe_cfg.url.port == 0)
                die("a check URL accepted without a port", s);
            if (strcmp(url.scheme, "tcp") == 0 && url.has_path)
                die("an accepted tcp URL with a path", s);
        } else {
            expect_err(err, "ha_check_parse_url");
        }
        char hp[HA_HOST_MAX + 16];
        ha_format_hostport(url.host, url.host_is_ipv6, url.port, hp, sizeof(hp));
    } else {
        expect_err(err, "ha_parse_url");
    }

    uint64_t ms = 0, again = 0;
    err[0] = '\0';
    if (ha_parse_duration(s, &ms, err, sizeof(err)) == 0) {
        char text[32];
        ha_format_duration(ms, text, sizeof(text));
        if (ha_parse_duration(text, &again, err, sizeof(err)) != 0 || again != ms)
            die("a duration that does not survive format + parse", s);
    } else {
        expect_err(err, "ha_parse_duration");
    }

    ha_status_range r;
    err[0] = '\0';
    if (ha_parse_status_range(s, &r, err, sizeof(err)) == 0) {
        if (r.lo < 100 || r.hi > 599 || r.lo > r.hi)
            die("an accepted status range outside 100-599 or reversed", s);
    } else {
        expect_err(err, "ha_parse_status_range");
    }

    char host[64];
    uint16_t port;
    err[0] = '\0';
    if (ha_parse_listen(s, host, sizeof(host), &port, err, sizeof(err)) == 0) {
        if (memchr(host, '\0', sizeof(host)) == NULL || !host[0])
            die("an accepted listen address with an empty host", s);
    } else {
        expect_err(err, "ha_parse_listen");
    }

    unsigned u;
    err[0] = '\0';
    if (ha_parse_uint(s, 1, 100, &u, err, sizeof(err)) == 0) {
        if (u < 1 || u > 100)
            die("ha_parse_uint accepted a value out of range", s);
    } else {
        expect_err(err, "ha_parse_uint");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[HA_ERR_MAX * 2];
    ha_config c;

    /* 1. The JSON document, exactly `size` bytes. */
    err[0] = '\0';
    if (ha_config_parse_json((const char *)data, size, "fuzz", &c, err, sizeof(err)) == 0) {
        check_config(&c);
        ha_config_free(&c);
    } else {
        expect_err(err, "ha_config_parse_json");
        if (c.checks != NULL)
            die("a rejected config still holds checks", NULL);
    }

    /* 2. Slices for the value parsers. */
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *slices[MAX_SLICES];
    size_t n = 0;
    for (char *s = text; n < MAX_SLICES;) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        slices[n++] = s;
        parse_slice(s);
        if (!nl)
            break;
        s = nl + 1;
    }

    /* 3. The same slices as flags. The first two double as --interval and --timeout when
     * there are more than two; every slice is a --check. */
    ha_config_inputs in;
    memset(&in, 0, sizeof(in));
    size_t first = 0;
    if (n > 2) {
        in.flag_interval = slices[0];
        in.flag_timeout = slices[1];
        first = 2;
    }
    for (size_t i = first; i < n && in.n_flag_checks < HA_MAX_FLAG_CHECKS; i++)
        in.flag_checks[in.n_flag_checks++] = slices[i];
    err[0] = '\0';
    if (ha_config_load(&in, &c, err, sizeof(err)) == 0) {
        check_config(&c);
        ha_config_free(&c);
    } else {
        expect_err(err, "ha_config_load");
    }
    free(text);
    return 0;
}
