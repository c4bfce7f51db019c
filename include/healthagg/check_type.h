/* check_type.h - what a check type and a transport are, and the one table that names them.
 *
 * A check is a URL plus keys. The URL's scheme picks a row of the scheme table
 * (src/checks/check_types.c): a protocol (the check type: what to say and how to judge the
 * answer) over a transport (how bytes reach the target: plain TCP, later TLS). Adding a type
 * is one file exporting one ha_check_type and one row in that table; nothing else names it.
 * Each type parses and validates its own keys, owns its parsed config (hung off the check's
 * ha_check_config) and its per-probe state (hung off the probe), so the shared probe engine
 * carries nothing type-specific. */
#ifndef HEALTHAGG_CHECK_TYPE_H
#define HEALTHAGG_CHECK_TYPE_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ha_probe ha_probe;
typedef struct ha_check_config ha_check_config;

/* Arguments every key parser gets: where the keys come from and where errors go. Keys are
 * read from `defaults` first (the config's "defaults" object, may be NULL), then from `obj`
 * (the check's own object, NULL for --check flags); errors are written as "PATH.KEY: ...". */
typedef struct ha_key_source {
    const cJSON *defaults;
    const cJSON *obj;
    const char *path; /* "checks[2]", or "--check app=..." for flags */
    char *err;
    size_t errlen;
} ha_key_source;

/* A protocol: what happens once a byte stream to the target exists. */
typedef struct ha_check_type {
    const char *name;        /* "http", "tcp", "file" */
    const char *const *keys; /* its own config keys, besides the common ones; NULL-terminated */
    size_t cfg_size;         /* its parsed config, calloc'ed and owned by ha_check_config */
    size_t state_size;       /* its per-probe state, calloc'ed and owned by the probe */
    /* Validates the URL's shape for this type (e.g. tcp needs a port and no path). */
    int (*check_url)(const ha_check_config *c, char *err, size_t errlen);
    /* Parses its keys into c->type_cfg (already allocated, zeroed). Returns 0 or -1. */
    int (*parse)(ha_check_config *c, const ha_key_source *src);
    void (*free_cfg)(void *cfg); /* optional: what parse allocated inside the config */
    /* Adds its effective settings to a log object; secrets appear as "<redacted>". */
    void (*describe)(const ha_check_config *c, cJSON *out);
    int (*init)(ha_probe *p);   /* optional: per-probe setup (prebuilt request bytes) */
    void (*reset)(ha_probe *p); /* optional: before each attempt */
    /* Optional: types that need no connection (file://) do their whole attempt here. */
    void (*start)(ha_probe *p);
    void (*on_connected)(ha_probe *p); /* the transport is ready for plaintext */
    void (*on_data)(ha_probe *p, const char *data, size_t len);
    void (*on_eof)(ha_probe *p);
    void (*free)(ha_probe *p); /* optional: what init allocated */
} ha_check_type;

/* A transport: between the TCP socket and the protocol. */
typedef struct ha_transport {
    const char *name;        /* "tcp", "tls" */
    const char *const *keys; /* config keys it owns ("tls"); NULL-terminated, may be NULL */
    size_t cfg_size;
    size_t state_size;
    int (*parse)(ha_check_config *c, const ha_key_source *src); /* into c->transport_cfg */
    void (*free_cfg)(void *cfg);
    void (*describe)(const ha_check_config *c, cJSON *out);
    int (*init)(ha_probe *p);
    void (*reset)(ha_probe *p);
    /* TCP is up: handshake, then ha_probe_transport_ready(p). */
    void (*on_connected)(ha_probe *p);
    /* Raw bytes from the socket: decode, then ha_probe_deliver(p, plain, n). */
    void (*on_bytes)(ha_probe *p, const char *data, size_t len);
    void (*on_eof)(ha_probe *p); /* then ha_probe_deliver_eof(p) */
    /* Plaintext from the protocol: encode, then ha_probe_send_raw(). Returns 0 or -1 (the
     * transport has already finished the attempt with a reason). */
    int (*send)(ha_probe *p, const char *data, size_t len);
    void (*free)(ha_probe *p);
} ha_transport;

/* One row of the scheme table. */
typedef struct ha_scheme_row {
    const char *scheme; /* lower case, without "://" */
    const ha_check_type *type;
    const ha_transport *transport; /* NULL: the type opens no connection */
    uint16_t default_port;         /* 0: the URL must give one */
} ha_scheme_row;

/* The row for a scheme ("http"), or NULL. */
const ha_scheme_row *ha_scheme_lookup(const char *scheme);
/* "http, https, tcp, ..." for error messages, from the table itself (never out of date). */
void ha_scheme_list(char *buf, size_t len);
/* Every key any type or transport accepts, for validating "defaults": true if `key` is one. */
bool ha_type_key_known(const char *key);
/* Whether `key` belongs to the row's type or transport. */
bool ha_row_has_key(const ha_scheme_row *row, const char *key);
/* "method, expect_status, ..." of a row's keys, for error messages. */
void ha_row_key_list(const ha_scheme_row *row, char *buf, size_t len);

/* Parses `text` as a check URL into c->url_text / c->url / c->row, applying the row's default
 * port and the type's URL rules. Returns 0 or -1 with a sentence (no field path) in err. */
int ha_check_parse_url(ha_check_config *c, const char *text, char *err, size_t errlen);
/* Allocates and parses the type's (and transport's) config for c, whose url is parsed.
 * Returns 0 or -1 with "PATH.KEY: ..." in src->err. */
int ha_check_parse_keys(ha_check_config *c, const ha_key_source *src);
/* Releases what ha_check_parse_keys allocated; safe on a zeroed config. */
void ha_check_config_release(ha_check_config *c);
/* Adds type and transport settings to a startup-log object. */
void ha_check_describe(const ha_check_config *c, cJSON *out);

/* Helpers for types parsing keys: each looks the key up in src->obj, then src->defaults, and
 * returns 1 when absent (leaving *out untouched), 0 when parsed, -1 on error. */
const cJSON *ha_key_find(const ha_key_source *src, const char *key, char *path, size_t pathlen);
int ha_key_error(const ha_key_source *src, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int ha_key_string(const ha_key_source *src, const char *key, char *out, size_t outlen);
int ha_key_uint(const ha_key_source *src, const char *key, unsigned min, unsigned max,
                unsigned *out);
int ha_key_duration(const ha_key_source *src, const char *key, uint64_t *out_ms);
int ha_key_bool(const ha_key_source *src, const char *key, bool *out);
const char *ha_json_type_name(const cJSON *v);
/* The value readers config.c uses for the common keys (same messages everywhere). */
int ha_json_uint(const cJSON *v, const char *path, unsigned min, unsigned max, unsigned *out,
                 char *err, size_t errlen);
int ha_json_duration(const cJSON *v, const char *path, uint64_t *out, char *err, size_t errlen);
int ha_json_bool(const cJSON *v, const char *path, bool *out, char *err, size_t errlen);
int ha_json_string(const cJSON *v, const char *path, char *out, size_t outlen, char *err,
                   size_t errlen);

#endif
