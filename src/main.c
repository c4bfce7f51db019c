/* main.c - subcommands and their flags; everything else lives behind commands.h.
 *
 * Exit codes: serve/validate use 2 for bad usage or config (a message names the field).
 * probe and check are health commands that Docker runs, and Docker reserves exit code 2, so
 * they report every problem, usage errors included, as 1 with a line on stdout. */
#include "healthagg/check_type.h"
#include "healthagg/commands.h"
#include "healthagg/config.h"
#include "healthagg/lint.h"
#include "healthagg/tls.h"

#include <cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char usage_main[] =
    "healthagg " HEALTHAGG_VERSION " - sidecar health aggregator for shell-less containers\n"
    "\n"
    "usage: healthagg <command> [flags]\n"
    "\n"
    "commands:\n"
    "  serve      run the sidecar: probe checks, cache verdicts, serve /livez /readyz /health "
    "/metrics\n"
    "  probe      ask the running sidecar's /readyz; exit 0 if ready, 1 if not (the ECS "
    "healthCheck)\n"
    "  check      probe URLs once, no daemon; exit 0 if all pass, 1 if not (a curl replacement)\n"
    "  validate   check a configuration without running it\n"
#ifdef HEALTHAGG_WITH_LINT
    "  lint       check ECS task definitions (and images) for health-check mistakes\n"
#else
    "  lint       not in this binary (the shipped sidecar): use healthagg-lint\n"
#endif
    "  version    print the version\n"
    "\n"
    "Run 'healthagg <command> --help' for a command's flags.\n";

static const char usage_serve[] =
    "usage: healthagg serve [flags]\n"
    "\n"
    "  --config FILE             JSON config (else $HEALTHAGG_CONFIG_FILE, else inline JSON in\n"
    "                            $HEALTHAGG_CONFIG)\n"
    "  --listen ADDR:PORT        where to serve (default 127.0.0.1:8099, or $HEALTHAGG_LISTEN)\n"
    "  --check [NAME=]URL        add a check; repeatable. URL: http://HOST:PORT/PATH or "
    "tcp://HOST:PORT\n"
    "  --interval D              time between probes of each check (default 5s)\n"
    "  --timeout D               per-probe timeout, shorter than the interval (default 2s)\n"
    "  --failure-threshold N     consecutive failures to turn a check down (default 3)\n"
    "  --success-threshold N     consecutive successes to bring it back (default 1)\n"
    "  --start-period D          failures don't count until this has passed or a probe\n"
    "                            succeeded (default 0)\n"
    "  --grace D                 after SIGTERM, answer 503 draining this long, then exit 0\n"
    "                            (default 0)\n"
    "\n"
    "Durations: 250ms, 5s, 2m, 1h. Flags win over the config file and apply to every check.\n"
    "Exit: 0 after SIGTERM/SIGINT; 2 on a bad config or flag, or a port that can't be bound.\n";

static const char usage_probe[] =
    "usage: healthagg probe [--url URL] [--group G] [--timeout D] [--config FILE] [--mirror WHEN]\n"
    "\n"
    "Asks the running sidecar's /readyz. Use it as the sidecar's ECS healthCheck:\n"
    "  \"command\": [\"CMD\", \"/healthagg\", \"probe\"]\n"
    "\n"
    "  --url URL       default: http://<listen>/readyz, where <listen> comes from\n"
    "                  $HEALTHAGG_LISTEN or the config (\"listen\"), like serve;\n"
    "                  0.0.0.0 becomes 127.0.0.1. Otherwise http://127.0.0.1:8099/readyz\n"
    "  --group G       judge only the checks in group G (/readyz?group=G), e.g. \"live\"\n"
    "                  for the ECS healthCheck, leaving dependencies to the load balancer\n"
    "  --timeout D     hard deadline for connect, send and receive (default 1s)\n"
    "  --config FILE   read \"listen\" from this config instead of the environment's\n"
    "  --mirror WHEN   never | failures (default) | always: also write the verdict as a\n"
    "                  JSON line to /proc/1/fd/1, the container's log stream (CloudWatch)\n"
    "\n"
    "Exit: 0 when the sidecar answered 200, else 1 (never 2: Docker reserves it).\n"
    "Prints one line on stdout: \"healthy\" or \"unhealthy: <reason>\"; nothing on stderr.\n";

static const char usage_check[] =
    "usage: healthagg check [--timeout D] [key flags] [TLS flags] URL...\n"
    "       healthagg check --config FILE\n"
    "\n"
    "Probes each URL once (http://HOST:PORT/PATH: status 200-399 passes; tcp://HOST:PORT:\n"
    "a connection passes) and prints a line per URL. For images without a shell or curl:\n"
    "  HEALTHCHECK CMD [\"/healthagg\", \"check\", \"http://127.0.0.1:8080/healthz\"]\n"
    "\n"
    "  --timeout D                per-URL timeout (default 2s)\n"
    "  --ca-file FILE             https: PEM CA bundle to verify the target with (instead of\n"
    "                             the system trust store; required in images without one)\n"
    "  --server-name NAME         https: name to verify and send as SNI (default: URL host)\n"
    "  --insecure-skip-verify     https: accept any certificate\n"
    "  --client-cert FILE         https: client certificate (mTLS), with --client-key FILE\n"
    "  --config FILE              run every check of a config file once, with its own keys\n"
    "Key flags (each sets that config key for every URL whose type has it):\n"
    "  --method GET|HEAD, --expect-status 200,3xx, --expect-body TEXT,\n"
    "  --max-response-bytes N, --header 'Name: value' (repeatable)      http, https\n"
    "  --send TEXT | --send-hex HEX, --expect TEXT | --expect-hex HEX\n"
    "  (--expect repeatable: alternatives), --max-response-bytes N        tcp\n"
    "  --max-age D                                                        file\n"
    "  --service NAME, --authority HOST:PORT                              grpc, grpcs\n"
    "  (the https flags apply to grpcs:// URLs too)\n"
    "\n"
    "Exit: 0 when every URL passed, else 1 (never 2).\n";

static const char usage_validate[] =
    "usage: healthagg validate [serve flags]\n"
    "\n"
    "Loads the configuration exactly as 'serve' would (flags, $HEALTHAGG_CONFIG_FILE,\n"
    "$HEALTHAGG_CONFIG, $HEALTHAGG_LISTEN) and reports the first problem.\n"
    "Exit: 0 valid, 2 invalid.\n";

static bool is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0;
}

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past what it used. */
static int flag_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *out = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *out = argv[++*i];
    return 1;
}

static void read_env(ha_config_inputs *in)
{
    in->env_file = getenv("HEALTHAGG_CONFIG_FILE");
    in->env_inline = getenv("HEALTHAGG_CONFIG");
    in->env_listen = getenv("HEALTHAGG_LISTEN");
}

/* Parses serve/validate flags. Returns 0, or 2 after printing the problem. */
static int parse_serve_flags(int argc, char **argv, ha_config_inputs *in, const char *usage)
{
    struct {
        const char *name;
        const char **slot;
    } flags[] = {
        {"--config", &in->config_path},
        {"--listen", &in->flag_listen},
        {"--interval", &in->flag_interval},
        {"--timeout", &in->flag_timeout},
        {"--start-period", &in->flag_start_period},
        {"--failure-threshold", &in->flag_failure_threshold},
        {"--success-threshold", &in->flag_success_threshold},
        {"--grace", &in->flag_grace},
    };
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            exit(0);
        }
        const char *v = NULL;
        int r = flag_value(argc, argv, &i, "--check", &v);
        if (r == 1) {
            if (in->n_flag_checks == HA_MAX_FLAG_CHECKS) {
                fprintf(stderr,
                        "healthagg: --check: at most %d on the command line; put more in "
                        "a config file\n",
                        HA_MAX_FLAG_CHECKS);
                return 2;
            }
            in->flag_checks[in->n_flag_checks++] = v;
            continue;
        }
        bool matched = false;
        for (size_t f = 0; r == 0 && f < sizeof(flags) / sizeof(flags[0]); f++) {
            r = flag_value(argc, argv, &i, flags[f].name, &v);
            if (r == 1) {
                *flags[f].slot = v;
                matched = true;
            }
        }
        if (r < 0) {
            fprintf(stderr, "healthagg: %s: missing value\n%s", argv[i], usage);
            return 2;
        }
        if (!matched) {
            fprintf(stderr,
                    "healthagg: unknown flag or argument \"%s\"; see 'healthagg %s --help'\n",
                    argv[i], argv[1]);
            return 2;
        }
    }
    return 0;
}

static int cmd_validate(int argc, char **argv)
{
    ha_config_inputs in;
    memset(&in, 0, sizeof(in));
    read_env(&in);
    int rc = parse_serve_flags(argc, argv, &in, usage_validate);
    if (rc != 0)
        return rc;
    ha_config cfg;
    char err[HA_ERR_MAX * 2];
    if (ha_config_load(&in, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "healthagg: %s\n", err);
        return 2;
    }
    char host[80];
    ha_format_hostport(cfg.listen_host, strchr(cfg.listen_host, ':') != NULL, cfg.listen_port, host,
                       sizeof(host));
    printf("config OK (%s): listen %s, %zu check%s\n", cfg.source, host, cfg.n_checks,
           cfg.n_checks == 1 ? "" : "s");
    for (size_t i = 0; i < cfg.n_checks; i++) {
        const ha_check_config *c = &cfg.checks[i];
        printf("  %s %s every %llums, timeout %llums, down after %u, up after %u%s\n", c->name,
               c->url_text, (unsigned long long)c->interval_ms, (unsigned long long)c->timeout_ms,
               c->failure_threshold, c->success_threshold, c->critical ? "" : ", non-critical");
    }
    ha_config_free(&cfg);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    ha_config_inputs in;
    memset(&in, 0, sizeof(in));
    read_env(&in);
    int rc = parse_serve_flags(argc, argv, &in, usage_serve);
    if (rc != 0)
        return rc;
    return ha_cmd_serve(&in);
}

/* probe: every problem exits 1 with one line on stdout, never 2. */
static int cmd_probe(int argc, char **argv)
{
    const char *url = NULL, *timeout = NULL, *config = NULL, *mirror = NULL, *group = NULL;
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage_probe, stdout);
            return 0;
        }
        int r = flag_value(argc, argv, &i, "--url", &url);
        if (r == 0)
            r = flag_value(argc, argv, &i, "--timeout", &timeout);
        if (r == 0)
            r = flag_value(argc, argv, &i, "--config", &config);
        if (r == 0)
            r = flag_value(argc, argv, &i, "--mirror", &mirror);
        if (r == 0)
            r = flag_value(argc, argv, &i, "--group", &group);
        if (r != 1) {
            printf("unhealthy: probe usage: unknown or incomplete flag \"%s\"; see 'healthagg "
                   "probe --help'\n",
                   argv[i]);
            return 1;
        }
    }
    uint64_t timeout_ms = 1000;
    char err[HA_ERR_MAX];
    if (timeout &&
        (ha_parse_duration(timeout, &timeout_ms, err, sizeof(err)) != 0 || timeout_ms == 0)) {
        printf("unhealthy: probe --timeout: %s\n", timeout_ms == 0 ? "must be above 0" : err);
        return 1;
    }
    ha_mirror_mode mirror_mode = HA_MIRROR_FAILURES;
    if (mirror && ha_mirror_parse(mirror, &mirror_mode) != 0) {
        printf("unhealthy: probe --mirror: \"%s\" is not one of never, failures, always\n", mirror);
        return 1;
    }
    if (group && !ha_group_name_ok(group)) {
        printf("unhealthy: probe --group: \"%.40s\" is not a group name (1-%d letters, digits, "
               "_ - .)\n",
               group, HA_GROUP_NAME_MAX - 1);
        return 1;
    }
    char derived[HA_HOST_MAX + 32];
    if (!url) {
        ha_config_inputs in;
        memset(&in, 0, sizeof(in));
        read_env(&in);
        in.config_path = config;
        char host[64];
        uint16_t port;
        if (ha_config_listen_only(&in, host, sizeof(host), &port, err, sizeof(err)) != 0) {
            printf("unhealthy: cannot tell where the sidecar listens: %s\n", err);
            return 1;
        }
        if (port == 0) { /* no --url was given: blame where the address came from */
            static const char fix[] =
                "asks for port 0 (any free port), where probe cannot find the sidecar; give it a "
                "fixed port there (e.g. 127.0.0.1:8099) or pass --url";
            if (in.env_listen && *in.env_listen)
                printf("unhealthy: HEALTHAGG_LISTEN=%s %s\n", in.env_listen, fix);
            else
                printf("unhealthy: the config's \"listen\" %s\n", fix);
            return 1;
        }
        /* A sidecar bound to every interface is still reachable on loopback. */
        if (strcmp(host, "0.0.0.0") == 0)
            strcpy(host, "127.0.0.1");
        else if (strcmp(host, "::") == 0)
            strcpy(host, "::1");
        char hp[96];
        ha_format_hostport(host, strchr(host, ':') != NULL, port, hp, sizeof(hp));
        snprintf(derived, sizeof(derived), "http://%s/readyz", hp);
        url = derived;
    }
    char grouped[HA_URL_TEXT_MAX + HA_GROUP_NAME_MAX + 8];
    if (group) { /* the sidecar judges only that group's checks */
        int n = snprintf(grouped, sizeof(grouped), "%s%cgroup=%s", url,
                         strchr(url, '?') ? '&' : '?', group);
        if (n < 0 || (size_t)n >= sizeof(grouped)) {
            printf("unhealthy: probe --url: longer than %d bytes\n", HA_URL_TEXT_MAX);
            return 1;
        }
        url = grouped;
    }
    return ha_cmd_probe(url, timeout_ms, mirror_mode, stdout);
}

/* The TLS flags of `check`, as a config "defaults" object {"tls": {...}} (NULL when none is
 * given); 0, or -1 after printing the error (named by its flag). */
static int check_tls_flags(const char *const *v, bool insecure, const char *const *urls, size_t n,
                           cJSON **out)
{
    static const char *const keys[] = {"ca_file", "server_name", "client_cert", "client_key"};
    static const char *const flags[] = {"--ca-file", "--server-name", "--client-cert",
                                        "--client-key"};
    *out = NULL;
    bool any = insecure;
    for (size_t k = 0; k < 4; k++)
        any = any || v[k];
    if (!any)
        return 0;
    bool tls_url = false;
    for (size_t i = 0; i < n; i++)
        tls_url = tls_url || strncasecmp(urls[i], "https://", 8) == 0 ||
                  strncasecmp(urls[i], "grpcs://", 8) == 0;
    if (!tls_url) {
        printf("fail: check: TLS flags apply to https:// and grpcs:// URLs, and none was given\n");
        return -1;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON *t = d ? cJSON_AddObjectToObject(d, "tls") : NULL;
    bool ok = t != NULL && (!insecure || cJSON_AddBoolToObject(t, "insecure_skip_verify", 1));
    for (size_t k = 0; ok && k < 4; k++)
        ok = !v[k] || cJSON_AddStringToObject(t, keys[k], v[k]);
    if (!ok) {
        cJSON_Delete(d);
        printf("fail: out of memory\n");
        return -1;
    }
    /* Files are checked here so that an error names the flag, not a config path. */
    ha_tls_options o;
    memset(&o, 0, sizeof(o));
    o.insecure_skip_verify = insecure;
    o.min_version = 12;
    snprintf(o.ca_file, sizeof(o.ca_file), "%s", v[0] ? v[0] : "");
    snprintf(o.client_cert, sizeof(o.client_cert), "%s", v[2] ? v[2] : "");
    snprintf(o.client_key, sizeof(o.client_key), "%s", v[3] ? v[3] : "");
    char err[HA_ERR_MAX];
    if (ha_tls_options_check(&o, err, sizeof(err)) != 0) {
        const char *rest = err;
        const char *flag = "TLS flags";
        for (size_t k = 0; k < 4; k++) {
            size_t kl = strlen(keys[k]);
            if (strncmp(err, keys[k], kl) == 0 && err[kl] == ':') {
                flag = flags[k];
                rest = err + kl + 1;
            }
        }
        printf("fail: check %s:%s\n", flag, rest);
        cJSON_Delete(d);
        return -1;
    }
    *out = d;
    return 0;
}

/* Per-check keys as `check` flags: each flag is one config key, applied (as "defaults") to
 * every URL whose type has the key. */
static const struct key_flag {
    const char *flag, *key;
    char kind; /* 's' string, 'n' number, 'l' comma-separated list, 'a' repeatable list,
                  'h' repeatable "Name: value" into an object */
} key_flags[] = {
    {"--method", "method", 's'},           {"--expect-status", "expect_status", 'l'},
    {"--expect-body", "expect_body", 's'}, {"--max-response-bytes", "max_response_bytes", 'n'},
    {"--header", "headers", 'h'},          {"--send", "send", 's'},
    {"--send-hex", "send_hex", 's'},       {"--expect", "expect", 'a'},
    {"--expect-hex", "expect_hex", 'a'},   {"--max-age", "max_age", 's'},
    {"--service", "service", 's'},         {"--authority", "authority", 's'},
};
#define N_KEY_FLAGS (sizeof(key_flags) / sizeof(key_flags[0]))

/* Adds one flag's value to the defaults object; 0, or -1 after printing why. */
static int add_key_flag(cJSON *d, const struct key_flag *f, const char *v)
{
    cJSON *cur = cJSON_GetObjectItemCaseSensitive(d, f->key);
    switch (f->kind) {
    case 's':
        if (cur) {
            printf("fail: check %s: given twice; keep one\n", f->flag);
            return -1;
        }
        return cJSON_AddStringToObject(d, f->key, v) ? 0 : -1;
    case 'n': {
        char *end = NULL;
        double x = strtod(v, &end);
        if (cur || !*v || *end) {
            printf("fail: check %s: expected one number, got \"%.40s\"\n", f->flag, v);
            return -1;
        }
        return cJSON_AddNumberToObject(d, f->key, x) ? 0 : -1;
    }
    case 'l': {
        if (cur) {
            printf("fail: check %s: given twice; list the values once, comma-separated\n", f->flag);
            return -1;
        }
        cJSON *arr = cJSON_AddArrayToObject(d, f->key);
        for (const char *p = v; arr && *p;) {
            size_t n = strcspn(p, ",");
            char item[64];
            snprintf(item, sizeof(item), "%.*s", (int)(n < 63 ? n : 63), p);
            cJSON_AddItemToArray(arr, cJSON_CreateString(item));
            p += n + (p[n] == ',');
        }
        return arr ? 0 : -1;
    }
    case 'a':
        if (!cur && !(cur = cJSON_AddArrayToObject(d, f->key)))
            return -1;
        cJSON_AddItemToArray(cur, cJSON_CreateString(v));
        return 0;
    case 'h': {
        const char *colon = strchr(v, ':');
        if (!colon || colon == v) {
            printf("fail: check --header: expected \"Name: value\"\n");
            return -1;
        }
        if (!cur && !(cur = cJSON_AddObjectToObject(d, f->key)))
            return -1;
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(colon - v < 127 ? colon - v : 127), v);
        const char *val = colon + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        cJSON_AddItemToObject(cur, name, cJSON_CreateString(val));
        return 0;
    }
    }
    return -1;
}

/* Every key set by a flag must be a key of at least one URL's type. */
static int keys_apply(const cJSON *d, const char *const *urls, size_t n)
{
    for (const cJSON *k = d ? d->child : NULL; k; k = k->next) {
        bool used = false;
        for (size_t i = 0; i < n && !used; i++) {
            ha_check_config c;
            char err[HA_ERR_MAX];
            memset(&c, 0, sizeof(c));
            used = ha_check_parse_url(&c, urls[i], err, sizeof(err)) == 0 &&
                   ha_row_has_key(c.row, k->string);
        }
        if (!used && strcmp(k->string, "tls") != 0) {
            const char *flag = k->string;
            for (size_t f = 0; f < N_KEY_FLAGS; f++)
                if (strcmp(key_flags[f].key, k->string) == 0)
                    flag = key_flags[f].flag;
            printf("fail: check %s: no URL given is of a type that has \"%s\" (see 'healthagg "
                   "check --help')\n",
                   flag, k->string);
            return -1;
        }
    }
    return 0;
}

/* check --config FILE: every check of the file once. */
static int check_config_file(const char *path)
{
    ha_config_inputs in;
    memset(&in, 0, sizeof(in));
    in.config_path = path;
    ha_config cfg;
    char err[HA_ERR_MAX * 2];
    if (ha_config_load(&in, &cfg, err, sizeof(err)) != 0) {
        printf("fail: check %s\n", err);
        return 1;
    }
    int rc = ha_cmd_check_config(&cfg, stdout);
    ha_config_free(&cfg);
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    const char *timeout = NULL, *config = NULL;
    const char *tls[4] = {NULL, NULL, NULL, NULL}; /* ca-file, server-name, client-cert/key */
    bool insecure = false;
    const char **urls = calloc((size_t)argc, sizeof(*urls));
    cJSON *keys = cJSON_CreateObject();
    size_t n = 0;
    int rc = 1;
    if (!urls || !keys) {
        printf("fail: out of memory\n");
        goto out;
    }
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage_check, stdout);
            rc = 0;
            goto out;
        }
        if (strcmp(argv[i], "--insecure-skip-verify") == 0) {
            insecure = true;
            continue;
        }
        int r = flag_value(argc, argv, &i, "--timeout", &timeout);
        if (r == 0)
            r = flag_value(argc, argv, &i, "--config", &config);
        if (r == 0)
            r = flag_value(argc, argv, &i, "--ca-file", &tls[0]);
        if (r == 0)
            r = flag_value(argc, argv, &i, "--server-name", &tls[1]);
        if (r == 0)
            r = flag_value(argc, argv, &i, "--client-cert", &tls[2]);
        if (r == 0)
            r = flag_value(argc, argv, &i, "--client-key", &tls[3]);
        for (size_t f = 0; r == 0 && f < N_KEY_FLAGS; f++) {
            const char *v = NULL;
            r = flag_value(argc, argv, &i, key_flags[f].flag, &v);
            if (r == 1 && add_key_flag(keys, &key_flags[f], v) != 0)
                goto out;
        }
        if (r < 0 || (r == 0 && argv[i][0] == '-')) {
            printf("fail: check usage: unknown or incomplete flag \"%s\"; see 'healthagg check "
                   "--help'\n",
                   argv[i]);
            goto out;
        }
        if (r == 0)
            urls[n++] = argv[i];
    }
    uint64_t timeout_ms = 2000;
    char err[HA_ERR_MAX];
    cJSON *defaults = NULL;
    if (config) {
        if (n || timeout || keys->child || insecure || tls[0] || tls[1] || tls[2] || tls[3])
            printf("fail: check --config runs the file's checks with their own settings; give "
                   "URLs and flags, or --config alone\n");
        else
            rc = check_config_file(config);
    } else if (n == 0) {
        printf("fail: check needs at least one URL, e.g. healthagg check "
               "http://127.0.0.1:8080/healthz (or --config FILE)\n");
    } else if (timeout && (ha_parse_duration(timeout, &timeout_ms, err, sizeof(err)) != 0 ||
                           timeout_ms == 0)) {
        printf("fail: check --timeout: %s\n", timeout_ms == 0 ? "must be above 0" : err);
    } else if (keys_apply(keys, urls, n) != 0 ||
               check_tls_flags(tls, insecure, urls, n, &defaults) != 0) {
        rc = 1;
    } else {
        if (keys->child) { /* the TLS flags' "tls" object joins the key flags */
            if (defaults)
                for (cJSON *t = defaults->child; t; t = defaults->child)
                    cJSON_AddItemToObject(keys, t->string, cJSON_DetachItemViaPointer(defaults, t));
            cJSON_Delete(defaults);
            defaults = keys;
            keys = NULL;
        }
        rc = ha_cmd_check(urls, n, timeout_ms, defaults, stdout);
        if (defaults != keys)
            cJSON_Delete(defaults);
    }
out:
    cJSON_Delete(keys);
    free(urls);
    return rc;
}

/* A process started with descriptor 0, 1 or 2 closed (`<&-`, `>&-`) would hand that number to
 * its next socket or pipe: libuv aborts on closing such a descriptor, and a log line would go
 * into whatever took fd 1. So before anything else opens a descriptor, each closed one gets
 * /dev/null - or, in an empty root without /dev, the root directory (reads and writes on it
 * fail harmlessly). Opening returns the lowest free number, so in order 0, 1, 2 each open
 * lands on the descriptor it fills. */
static void fill_standard_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        int got = open("/dev/null", O_RDWR);
        if (got < 0)
            got = open("/", O_RDONLY | O_DIRECTORY);
        if (got >= 0 && got != fd) { /* cannot happen with 0..fd-1 open; be safe anyway */
            dup2(got, fd);
            close(got);
        }
    }
}

int main(int argc, char **argv)
{
    fill_standard_fds();
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(cmd, "probe") == 0)
        return cmd_probe(argc, argv);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc, argv);
    if (strcmp(cmd, "validate") == 0)
        return cmd_validate(argc, argv);
    if (strcmp(cmd, "lint") == 0) {
#ifdef HEALTHAGG_WITH_LINT
        return ha_cmd_lint(argc, argv);
#else
        /* The sidecar binary leaves lint (and zlib) out to stay within its size budget: lint
         * runs in CI, never in the task. */
        fputs("healthagg lint: not in this binary: the sidecar build leaves lint out to stay "
              "small; run healthagg-lint (the same version with lint, built beside it by "
              "deploy/build-static.sh) or a development build\n",
              stderr);
        return 2;
#endif
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("healthagg %s\n", HEALTHAGG_VERSION);
        return 0;
    }
    if (is_help(cmd)) {
        fputs(usage_main, stdout);
        return 0;
    }
    fprintf(stderr, "healthagg: unknown command \"%s\"\n\n%s", cmd, usage_main);
    return 2;
}
