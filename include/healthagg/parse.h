/* parse.h - parsers for the values people type: durations, URLs, listen addresses, status ranges.
 *
 * Pure functions, no allocation, no libuv: the config loader, the probe client and the fuzz
 * targets all share them. Each returns 0 on success or -1 with a human sentence in `err`
 * (the caller prefixes the field path, so the sentence never repeats it). */
#ifndef HEALTHAGG_PARSE_H
#define HEALTHAGG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HA_HOST_MAX 254
#define HA_PATH_MAX 1024
#define HA_ERR_MAX 512

#define HA_SCHEME_MAX 16

typedef struct ha_url {
    char scheme[HA_SCHEME_MAX]; /* lower case: "http", "tcp", "file" */
    char host[HA_HOST_MAX];     /* without IPv6 brackets; empty for file:// */
    bool host_is_ipv6;
    uint16_t port;          /* 0 when the URL gave none (the scheme's default applies) */
    char path[HA_PATH_MAX]; /* starts with '/', query included ("/" when none was given) */
    bool has_path;          /* the URL had a path or query (tcp:// must not) */
} ha_url;

typedef struct ha_status_range {
    uint16_t lo, hi;
} ha_status_range;

/* "250ms", "5s", "2m", "1h", or "0". Upper bound 24h keeps every sum in range. */
int ha_parse_duration(const char *s, uint64_t *out_ms, char *err, size_t errlen);
/* SCHEME://HOST[:PORT][/PATH] (HOST a name, IPv4 or [IPv6]) or file:///ABS/PATH. The syntax
 * only: which schemes exist and what each needs is the check table's business
 * (ha_check_parse_url in check_type.h). */
int ha_parse_url(const char *s, ha_url *out, char *err, size_t errlen);
/* ADDR:PORT where ADDR is an IPv4 literal, [IPv6] or "localhost"; port 0 means ephemeral. */
int ha_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port, char *err,
                    size_t errlen);
/* "200", "200-399" or "2xx". */
int ha_parse_status_range(const char *s, ha_status_range *out, char *err, size_t errlen);
/* A decimal whole number in [min, max]. */
int ha_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out, char *err,
                  size_t errlen);
/* Hex bytes: pairs of hex digits ("0000000804d2162f", any case), optionally separated by
 * spaces, tabs, ':' or '-' between pairs ("00 00 00 08", "de:ad"). At most `cap` bytes into
 * out; *outlen gets how many. An empty string is an error (nothing to send or expect). */
int ha_parse_hex(const char *s, unsigned char *out, size_t cap, size_t *outlen, char *err,
                 size_t errlen);
/* Writes "250ms", "5s", "2m" for logs; the shortest exact unit. */
void ha_format_duration(uint64_t ms, char *buf, size_t len);
/* Writes "HOST:PORT", bracketing IPv6. */
void ha_format_hostport(const char *host, bool ipv6, uint16_t port, char *buf, size_t len);

#endif
