/* fuzz_quote.c - libFuzzer target for src/quote.c, the quoting of untrusted bytes.
 *
 * Per input, for several output sizes: ha_quote() must write valid UTF-8 with no control
 * character, no U+2028/U+2029, never more than the buffer, and the whole input when it fits.
 * ha_json_fix_utf8() must leave valid UTF-8 and change nothing in input that already was, and
 * ha_utf8_trim_partial() must leave valid UTF-8 of valid UTF-8 cut anywhere. */
#include "healthagg/quote.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what)
{
    fprintf(stderr, "fuzz_quote: %s\n", what);
    abort();
}

static void check_printable(const char *s, size_t n)
{
    if (ha_utf8_invalid_at(s, n) != n)
        die("ha_quote wrote invalid UTF-8");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            die("ha_quote wrote a control character");
        if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
            ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
            die("ha_quote wrote a line separator");
        if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] < 0xA0)
            die("ha_quote wrote a C1 control");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t sizes[] = {1, 2, 4, 5, 9, 41, 200, 4096};
    char *out = malloc(4096 + 1), *whole = malloc(4096);
    if (!out || !whole) {
        free(out);
        free(whole);
        return 0;
    }
    /* At most 6 output bytes per input byte: up to 600 bytes always fit in 4096. */
    size_t full = size <= 600 ? ha_quote(whole, 4096, (const char *)data, size) : 4096;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t cap = sizes[k];
        memset(out, 'Z', cap + 1);
        size_t n = ha_quote(out, cap, (const char *)data, size);
        if (n >= cap || out[n] != '\0' || out[cap] != 'Z' || strlen(out) != n)
            die("ha_quote overran its buffer or misreported its length");
        check_printable(out, n);
        if (full < cap && (n != full || memcmp(out, whole, n) != 0))
            die("ha_quote cut or changed an input that fits");
    }
    free(whole);
    char *text = malloc(size + 1);
    if (!text) {
        free(out);
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);
    bool valid = ha_utf8_invalid_at(text, len) == len;
    char *copy = strdup(text);
    char *fixed = ha_json_fix_utf8(text);
    if (fixed) {
        size_t flen = strlen(fixed);
        if (ha_utf8_invalid_at(fixed, flen) != flen)
            die("ha_json_fix_utf8 left invalid UTF-8");
        if (valid && copy && strcmp(fixed, copy) != 0)
            die("ha_json_fix_utf8 changed valid UTF-8");
        if (valid) {
            for (size_t cut = 0; cut <= flen && cut < 64; cut++) {
                char c = fixed[cut];
                fixed[cut] = '\0';
                ha_utf8_trim_partial(fixed);
                if (ha_utf8_invalid_at(fixed, strlen(fixed)) != strlen(fixed))
                    die("ha_utf8_trim_partial left a partial character");
                strcpy(fixed, copy);
                (void)c;
            }
        }
        free(fixed);
    }
    free(copy);
    free(out);
    return 0;
}
