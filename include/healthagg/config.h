/* config.h - the effective configuration: built-in defaults, then a JSON document (file or
 * HEALTHAGG_CONFIG), then environment, then command-line flags. Later sources win.
 *
 * Loading either yields a complete, validated config or an error naming the field
 * ("checks[1].timeout: ...") and the fix. Nothing starts half-configured. */
#ifndef HEALTHAGG_CONFIG_H
#define HEALTHAGG_CONFIG_H

#include "healthagg/parse.h"

#define HA_NAME_MAX 64
#define HA_URL_TEXT_MAX 1100
#define HA_MAX_CHECKS 4096
#define HA_MAX_FLAG_CHECKS 64
#define HA_GROUP_NAME_MAX 32 /* bytes of a group name, with the NUL */
#define HA_GROUPS_PER_CHECK 8
#define HA_MAX_GROUPS 64 /* distinct groups of a config: a check's membership is a bit mask */

struct ha_scheme_row;

typedef struct ha_check_config {
    char name[HA_NAME_MAX];
    char url_text[HA_URL_TEXT_MAX];
    ha_url url;
    const struct ha_scheme_row *row; /* the scheme's type and transport (check_type.h) */
    uint64_t interval_ms;
    uint64_t timeout_ms;
    uint64_t start_period_ms;
    uint64_t start_interval_ms; /* probe at this rate until the first success; 0 = interval */
    unsigned failure_threshold;
    unsigned success_threshold;
    bool critical;
    void *type_cfg;              /* owned: the type's parsed keys (ha_check_config_release) */
    void *transport_cfg;         /* owned: the transport's parsed keys, or NULL */
    char container[HA_NAME_MAX]; /* ECS task container this check watches; "" = none */
    char groups[HA_GROUPS_PER_CHECK][HA_GROUP_NAME_MAX]; /* "groups", as configured */
    unsigned n_groups;
    uint64_t group_mask; /* bit g: a member of ha_config.groups[g] (set by validation) */
} ha_check_config;

/* A named subset of the checks ("groups" of each check): /readyz?group=G judges only these. */
typedef struct ha_group {
    char name[HA_GROUP_NAME_MAX];
    size_t *members; /* owned: indices into checks, ascending */
    size_t n_members;
    uint64_t *member_bits; /* owned: bit i set for each member (ha_aggregate_summary_of) */
} ha_group;

/* Bounds on what clients of the health endpoint may cost us. */
typedef struct ha_server_limits {
    unsigned max_connections;
    unsigned max_header_bytes;
    uint64_t request_timeout_ms; /* from first byte of a request to its end */
    uint64_t idle_timeout_ms;    /* keep-alive connection with no request in progress */
    unsigned max_requests_per_connection;
} ha_server_limits;

typedef struct ha_config {
    char listen_host[64];
    uint16_t listen_port;
    uint64_t grace_ms; /* SIGTERM: serve 503 draining this long, then exit 0 */
    ha_server_limits limits;
    bool public_details;   /* server.public_details: /health, /metrics for non-loopback peers */
    bool enforce;          /* false: report-only, /readyz stays 200 (see aggregate.h) */
    unsigned history_size; /* flight recorder: results kept per check */
    uint64_t still_unhealthy_every_ms; /* still_unhealthy log line period */
    ha_check_config *checks;           /* owned; ha_config_free releases it */
    size_t n_checks;
    ha_group *groups; /* owned: every group any check names, in order of first mention */
    size_t n_groups;
    char source[96]; /* where the JSON came from, for the startup log */
} ha_config;

/* Everything the outside world hands us, kept as text so errors can name the flag. */
typedef struct ha_config_inputs {
    const char *config_path;   /* --config */
    const char *env_file;      /* HEALTHAGG_CONFIG_FILE */
    const char *env_inline;    /* HEALTHAGG_CONFIG */
    const char *env_listen;    /* HEALTHAGG_LISTEN */
    const char *flag_listen;   /* --listen */
    const char *flag_interval; /* --interval ... */
    const char *flag_timeout;
    const char *flag_start_period;
    const char *flag_failure_threshold;
    const char *flag_success_threshold;
    const char *flag_grace;
    const char *flag_checks[HA_MAX_FLAG_CHECKS]; /* --check [NAME=]URL */
    size_t n_flag_checks;
} ha_config_inputs;

/* Returns 0 with *out filled, or -1 with `err` holding "field: problem; fix". */
int ha_config_load(const ha_config_inputs *in, ha_config *out, char *err, size_t errlen);
/* Only the JSON step, for fuzzing and unit tests: `origin` names the source in errors. */
int ha_config_parse_json(const char *json, size_t len, const char *origin, ha_config *out,
                         char *err, size_t errlen);
/* Resolves the listen address the way `serve` would, without requiring any checks:
 * what `probe` uses to find the sidecar. */
int ha_config_listen_only(const ha_config_inputs *in, char *host, size_t hostlen, uint16_t *port,
                          char *err, size_t errlen);
void ha_config_free(ha_config *c);
/* The index of the group called name[0..len), or -1. */
int ha_config_group_find(const ha_config *c, const char *name, size_t len);
/* Whether `name` is a valid group name: 1-31 letters, digits, '_', '-', '.'. */
bool ha_group_name_ok(const char *name);

#endif
