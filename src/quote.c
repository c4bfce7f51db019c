/* quote.c - UTF-8 validation and quoting of untrusted bytes (see quote.h).
 *
 * The trade-off: quoting escapes more than strictly needed (every C1 control, the line
 * separators U+2028/U+2029) so that a quote is safe on one line of a terminal, in a log
 * viewer and in JSON alike; what a human reads stays recognisable, and a quote can never
 * carry a newline or an invalid byte into the one-line reasons. */
#include "healthagg/quote.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t ha_utf8_char_len(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (len == 0)
        return 0;
    unsigned char c = u[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (len < n || u[1] < lo || u[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (u[i] < 0x80 || u[i] > 0xBF)
            return 0;
    return n;
}

size_t ha_utf8_invalid_at(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = ha_utf8_char_len(s + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

void ha_utf8_trim_partial(char *s)
{
    size_t len = strlen(s);
    /* A character is at most 4 bytes: look back at most 3 for the start of the last one. */
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char)s[len - back];
        if (c < 0x80)
            return; /* ASCII: nothing cut */
        if (c >= 0xC0) {
            if (ha_utf8_char_len(s + len - back, back) == 0)
                s[len - back] = '\0';
            return;
        }
    }
}

/* The code point of a well-formed sequence of n bytes. */
static uint32_t decode(const unsigned char *u, size_t n)
{
    if (n == 1)
        return u[0];
    uint32_t cp = u[0] & (0xFF >> (n + 1));
    for (size_t i = 1; i < n; i++)
        cp = (cp << 6) | (u[i] & 0x3F);
    return cp;
}

/* The text that shows the input at i: the character itself or its escape (in esc). Returns
 * how many input bytes it stands for. */
static size_t piece_at(const char *in, size_t len, size_t i, bool quotes, char esc[8],
                       const char **piece, size_t *plen)
{
    const unsigned char *u = (const unsigned char *)in + i;
    size_t n = ha_utf8_char_len(in + i, len - i);
    if (n == 0) { /* not UTF-8: show the byte */
        snprintf(esc, 8, "\\x%02X", u[0]);
        *piece = esc;
        *plen = 4;
        return 1;
    }
    uint32_t cp = decode(u, n);
    *piece = (const char *)u;
    *plen = n;
    if (quotes && (cp == '\\' || cp == '"')) {
        esc[0] = '\\';
        esc[1] = (char)cp;
        *piece = esc;
        *plen = 2;
    } else if (cp == '\n' || cp == '\r' || cp == '\t') {
        esc[0] = '\\';
        esc[1] = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
        *piece = esc;
        *plen = 2;
    } else if (cp < 0x20 || cp == 0x7F) {
        snprintf(esc, 8, "\\x%02X", (unsigned)cp);
        *piece = esc;
        *plen = 4;
    } else if ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029) {
        snprintf(esc, 8, "\\u%04X", (unsigned)cp);
        *piece = esc;
        *plen = 6;
    }
    return n;
}

static size_t quote(char *out, size_t outlen, const char *in, size_t len, bool quotes)
{
    if (outlen == 0)
        return 0;
    static const char dots[] = "...";
    char esc[8];
    const char *piece;
    size_t plen, total = 0;
    for (size_t i = 0; i < len && total < outlen;) {
        i += piece_at(in, len, i, quotes, esc, &piece, &plen);
        total += plen;
    }
    /* When the whole quote does not fit, keep room for "..." after the last piece shown. */
    size_t room = total < outlen ? outlen - 1 : outlen - 1 - (outlen > sizeof(dots) - 1 ? 3 : 0);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = piece_at(in, len, i, quotes, esc, &piece, &plen);
        if (o + plen > room)
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        i += n;
    }
    if (total >= outlen && o + sizeof(dots) - 1 < outlen) {
        memcpy(out + o, dots, sizeof(dots) - 1);
        o += sizeof(dots) - 1;
    }
    out[o] = '\0';
    return o;
}

size_t ha_quote(char *out, size_t outlen, const char *in, size_t len)
{
    return quote(out, outlen, in, len, true);
}

size_t ha_printable(char *out, size_t outlen, const char *in, size_t len)
{
    return quote(out, outlen, in, len, false);
}

char *ha_json_fix_utf8(char *text)
{
    if (!text)
        return NULL;
    size_t len = strlen(text), bad = 0;
    for (size_t i = ha_utf8_invalid_at(text, len); i < len;) {
        bad++;
        i++;
        i += ha_utf8_invalid_at(text + i, len - i);
    }
    if (bad == 0)
        return text;
    static const char repl[] = "\\ufffd";
    char *fixed = malloc(len + bad * (sizeof(repl) - 2) + 1);
    if (!fixed) {
        free(text);
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t good = ha_utf8_invalid_at(text + i, len - i);
        memcpy(fixed + o, text + i, good);
        o += good;
        i += good;
        if (i < len) {
            memcpy(fixed + o, repl, sizeof(repl) - 1);
            o += sizeof(repl) - 1;
            i++;
        }
    }
    fixed[o] = '\0';
    free(text);
    return fixed;
}
