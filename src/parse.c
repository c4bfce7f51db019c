/* parse.c - durations, URLs, listen addresses and status ranges from user text.
 *
 * Every error message says what was wrong and what a valid value looks like, because the
 * person reading it is usually looking at a task definition, not at this code. */
#include "healthagg/parse.h"

#include "healthagg/quote.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

#define DURATION_MAX_MS (24ULL * 3600 * 1000)

int ha_parse_duration(const char *s, uint64_t *out_ms, char *err, size_t errlen)
{
    static const char hint[] = "use a whole number with ms, s, m or h (e.g. 250ms, 5s, 2m)";
    if (!s || !*s)
        return fail(err, errlen, "empty duration; %s", hint);
    const char *p = s;
    uint64_t n = 0;
    if (!isdigit((unsigned char)*p))
        return fail(err, errlen, "invalid duration \"%.40s\"; %s", s, hint);
    while (isdigit((unsigned char)*p)) {
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > DURATION_MAX_MS)
            return fail(err, errlen, "duration \"%.40s\" is too long; the maximum is 24h", s);
        p++;
    }
    uint64_t mult;
    if (*p == '\0') {
        if (n != 0)
            return fail(err, errlen, "duration \"%.40s\" has no unit; %s", s, hint);
        mult = 1;
    } else if (strcmp(p, "ms") == 0) {
        mult = 1;
    } else if (strcmp(p, "s") == 0) {
        mult = 1000;
    } else if (strcmp(p, "m") == 0) {
        mult = 60 * 1000;
    } else if (strcmp(p, "h") == 0) {
        mult = 3600 * 1000;
    } else {
        return fail(err, errlen, "invalid duration \"%.40s\"; %s", s, hint);
    }
    if (n * mult > DURATION_MAX_MS)
        return fail(err, errlen, "duration \"%.40s\" is too long; the maximum is 24h", s);
    *out_ms = n * mult;
    return 0;
}

void ha_format_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

void ha_format_hostport(const char *host, bool ipv6, uint16_t port, char *buf, size_t len)
{
    snprintf(buf, len, ipv6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
}

/* Parses a port at p up to `end`; the digits must fill the span. */
static int parse_port(const char *p, const char *end, bool allow_zero, uint16_t *out, char *err,
                      size_t errlen)
{
    if (p == end)
        return fail(err, errlen, "missing port number after ':'");
    unsigned long v = 0;
    for (const char *q = p; q < end; q++) {
        if (!isdigit((unsigned char)*q))
            return fail(err, errlen, "port \"%.*s\" is not a number",
                        (int)(end - p > 10 ? 10 : end - p), p);
        v = v * 10 + (unsigned long)(*q - '0');
        if (v > 65535)
            return fail(err, errlen, "port %.*s is out of range 1-65535",
                        (int)(end - p > 10 ? 10 : end - p), p);
    }
    if (v == 0 && !allow_zero)
        return fail(err, errlen, "port 0 is not valid here; use 1-65535");
    *out = (uint16_t)v;
    return 0;
}

static bool valid_hostname(const char *h, size_t n)
{
    if (n == 0 || n >= HA_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Splits "host[:port]" or "[v6][:port]" into its parts. */
static int parse_authority(const char *a, size_t n, char *host, size_t hostlen, bool *ipv6,
                           const char **port_start, const char **port_end, char *err, size_t errlen)
{
    const char *end = a + n;
    *port_start = *port_end = NULL;
    *ipv6 = false;
    if (n == 0)
        return fail(err, errlen, "missing host");
    const char *host_start = a, *host_end;
    if (*a == '[') {
        const char *close = memchr(a, ']', n);
        if (!close)
            return fail(err, errlen, "unterminated IPv6 address; write it as [::1]");
        host_start = a + 1;
        host_end = close;
        *ipv6 = true;
        if (close + 1 < end) {
            if (close[1] != ':')
                return fail(err, errlen, "unexpected text after IPv6 address");
            *port_start = close + 2;
            *port_end = end;
        }
    } else {
        const char *colon = memchr(a, ':', n);
        host_end = colon ? colon : end;
        if (colon) {
            if (memchr(colon + 1, ':', (size_t)(end - colon - 1)))
                return fail(err, errlen, "IPv6 addresses must be in brackets, e.g. [::1]:8080");
            *port_start = colon + 1;
            *port_end = end;
        }
    }
    size_t hn = (size_t)(host_end - host_start);
    if (hn == 0)
        return fail(err, errlen, "missing host");
    if (hn >= hostlen)
        return fail(err, errlen, "host name is too long");
    memcpy(host, host_start, hn);
    host[hn] = '\0';
    if (*ipv6) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return fail(err, errlen, "\"%.60s\" is not a valid IPv6 address", host);
    } else if (!valid_hostname(host, hn)) {
        return fail(err, errlen, "\"%.60s\" is not a valid host name", host);
    }
    return 0;
}

int ha_parse_url(const char *s, ha_url *out, char *err, size_t errlen)
{
    static const char hint[] = "use http://HOST:PORT/PATH, tcp://HOST:PORT or file:///PATH";
    if (!s || !*s)
        return fail(err, errlen, "empty URL; %s", hint);
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c == 0x7f)
            return fail(err, errlen, "URL contains a space or control character; %s", hint);
    if (ha_utf8_invalid_at(s, strlen(s)) != strlen(s))
        return fail(err, errlen, "URL is not valid UTF-8; percent-encode other bytes (%%XX)");
    memset(out, 0, sizeof(*out));
    const char *sep = strstr(s, "://");
    size_t slen = sep ? (size_t)(sep - s) : 0;
    if (!sep || slen == 0)
        return fail(err, errlen, "\"%.60s\" has no scheme; %s", s, hint);
    if (slen >= sizeof(out->scheme))
        return fail(err, errlen, "unsupported scheme \"%.16s\"; %s", s, hint);
    for (size_t i = 0; i < slen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalpha(c))
            return fail(err, errlen, "unsupported scheme \"%.*s\"; %s", (int)slen, s, hint);
        out->scheme[i] = (char)tolower(c);
    }
    const char *rest = sep + 3;
    size_t alen = strcspn(rest, "/?#");
    if (memchr(rest, '@', alen))
        return fail(err, errlen,
                    "user information (user:password@) is not allowed in URLs: it would be "
                    "logged and shown in /health; send credentials in a header with \"headers\" "
                    "(e.g. {\"Authorization\": \"Basic ${APP_AUTH}\"})");
    if (strcmp(out->scheme, "file") == 0) {
        /* file:///ABS/PATH: no host, the rest is a local path taken literally. */
        if (alen != 0 && !(alen == 9 && strncasecmp(rest, "localhost", 9) == 0))
            return fail(err, errlen, "file:// URLs name a local path: file:///run/beat");
        rest += alen;
        if (rest[0] != '/')
            return fail(err, errlen, "file:// needs an absolute path, e.g. file:///run/beat");
        size_t plen = strlen(rest);
        if (plen >= sizeof(out->path))
            return fail(err, errlen, "URL path is longer than %d bytes", HA_PATH_MAX - 1);
        memcpy(out->path, rest, plen + 1);
        out->has_path = true;
        return 0;
    }
    const char *pstart, *pend;
    if (parse_authority(rest, alen, out->host, sizeof(out->host), &out->host_is_ipv6, &pstart,
                        &pend, err, errlen) != 0)
        return -1;
    if (pstart && parse_port(pstart, pend, false, &out->port, err, errlen) != 0)
        return -1;
    const char *path = rest + alen;
    size_t plen = strcspn(path, "#"); /* a fragment is never sent */
    out->has_path = !(plen == 0 || (plen == 1 && path[0] == '/'));
    if (plen == 0) {
        strcpy(out->path, "/");
        return 0;
    }
    /* The path is sent as the request target, where only ASCII graphic characters other than
     * " < > \\ ^ ` { | } may appear (RFC 3986, RFC 9112 section 3.2): those and every non-ASCII
     * byte (valid UTF-8, checked above) are percent-encoded, as browsers and curl do. A '%'
     * must already start an escape: guessing what a lone one meant could change the URL. */
    static const char hex[] = "0123456789ABCDEF";
    size_t off = 0;
    if (path[0] == '?')
        out->path[off++] = '/';
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '%' && !(i + 2 < plen && isxdigit((unsigned char)path[i + 1]) &&
                          isxdigit((unsigned char)path[i + 2])))
            return fail(err, errlen,
                        "a '%%' in the URL must start an escape like %%2F; write a literal %% "
                        "as %%25");
        bool encode = c >= 0x80 || strchr("\"<>\\^`{|}", (char)c) != NULL;
        if (off + (encode ? 3 : 1) + 1 > sizeof(out->path))
            return fail(err, errlen, "URL path is longer than %d bytes (percent-encoded)",
                        HA_PATH_MAX - 2);
        if (encode) {
            out->path[off++] = '%';
            out->path[off++] = hex[c >> 4];
            out->path[off++] = hex[c & 15];
        } else {
            out->path[off++] = (char)c;
        }
    }
    out->path[off] = '\0';
    return 0;
}

int ha_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port, char *err,
                    size_t errlen)
{
    static const char hint[] = "use ADDR:PORT, e.g. 127.0.0.1:8099, 0.0.0.0:8099 or [::1]:8099";
    if (!s || !*s)
        return fail(err, errlen, "empty address; %s", hint);
    if (s[0] == ':')
        return fail(err, errlen, "host missing: use 127.0.0.1%.8s or 0.0.0.0%.8s", s, s);
    if (memchr(s, '@', strlen(s)))
        return fail(err, errlen, "\"%.60s\" is not an address; %s", s, hint);
    bool ipv6;
    const char *pstart, *pend;
    if (parse_authority(s, strlen(s), host, hostlen, &ipv6, &pstart, &pend, err, errlen) != 0)
        return -1;
    if (!pstart)
        return fail(err, errlen, "\"%.60s\" has no port; %s", s, hint);
    if (parse_port(pstart, pend, true, port, err, errlen) != 0)
        return -1;
    if (!ipv6) {
        if (strcmp(host, "localhost") == 0) {
            if (hostlen < sizeof("127.0.0.1"))
                return fail(err, errlen, "address buffer too small");
            strcpy(host, "127.0.0.1");
        }
        struct in_addr a4;
        if (inet_pton(AF_INET, host, &a4) != 1)
            return fail(err, errlen, "\"%.60s\" is not an IP address; %s", host, hint);
    }
    return 0;
}

int ha_parse_status_range(const char *s, ha_status_range *out, char *err, size_t errlen)
{
    static const char hint[] = "use a code (200), a range (200-399) or a class (2xx)";
    if (!s)
        return fail(err, errlen, "missing status; %s", hint);
    size_t n = strlen(s);
    if (n >= 3 && s[0] == '1' && (n == 3 || s[3] == '-') &&
        (isdigit((unsigned char)s[1]) || tolower((unsigned char)s[1]) == 'x'))
        return fail(err, errlen,
                    "status \"%.20s\": 1xx answers are interim (100 Continue, 101 Switching "
                    "Protocols, 103 Early Hints), never the final one, so a check expecting one "
                    "could never pass; use 200-599",
                    s);
    if (n == 3 && (s[0] >= '1' && s[0] <= '5') && tolower((unsigned char)s[1]) == 'x' &&
        tolower((unsigned char)s[2]) == 'x') {
        out->lo = (uint16_t)((s[0] - '0') * 100);
        out->hi = (uint16_t)(out->lo + 99);
        return 0;
    }
    unsigned lo, hi;
    char extra;
    int got = sscanf(s, "%3u-%3u%c", &lo, &hi, &extra);
    if (got == 1 && n == 3) {
        hi = lo;
    } else if (got == 2 && n == 7) {
        /* fine */
    } else {
        return fail(err, errlen, "invalid status \"%.20s\"; %s", s, hint);
    }
    if (lo < 100 || hi > 599 || lo > hi)
        return fail(err, errlen, "status \"%.20s\" is outside 100-599 or reversed; %s", s, hint);
    out->lo = (uint16_t)lo;
    out->hi = (uint16_t)hi;
    return 0;
}

int ha_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out, char *err,
                  size_t errlen)
{
    if (!s || !*s)
        return fail(err, errlen, "expected a whole number %u-%u", min, max);
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return fail(err, errlen, "\"%.20s\" is not a whole number; expected %u-%u", s, min,
                        max);
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > max)
            return fail(err, errlen, "%.20s is out of range; expected %u-%u", s, min, max);
    }
    if (v < min)
        return fail(err, errlen, "%.20s is out of range; expected %u-%u", s, min, max);
    *out = (unsigned)v;
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int ha_parse_hex(const char *s, unsigned char *out, size_t cap, size_t *outlen, char *err,
                 size_t errlen)
{
    size_t n = 0;
    for (size_t i = 0; s[i];) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == ':' || c == '-') {
            if (n == 0 || !s[i + 1] || strchr(" \t:-", s[i + 1]))
                return fail(err, errlen,
                            "separator at offset %zu; separators (space, ':', '-') go only "
                            "between byte pairs, one at a time",
                            i);
            i++;
            continue;
        }
        int hi = hex_digit(c);
        if (hi < 0)
            return fail(err, errlen,
                        "'%c' at offset %zu is not a hex digit; write bytes as pairs like "
                        "\"0000000804d2162f\"",
                        isprint((unsigned char)c) ? c : '?', i);
        int lo = s[i + 1] ? hex_digit(s[i + 1]) : -1;
        if (lo < 0)
            return fail(err, errlen,
                        "odd hex digit at offset %zu; every byte is two hex digits (\"0a\", "
                        "not \"a\")",
                        i);
        if (n == cap)
            return fail(err, errlen, "more than %zu bytes", cap);
        out[n++] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    if (n == 0)
        return fail(err, errlen, "no bytes; give pairs of hex digits like \"2b504f4e47\"");
    *outlen = n;
    return 0;
}
