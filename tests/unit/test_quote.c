/* test_quote.c - UTF-8 validation, quoting of untrusted bytes, and the JSON UTF-8 guard. */
#include "healthagg/quote.h"
#include "unit.h"

#include <stdlib.h>

static void utf8_validation(void)
{
    CHECK(ha_utf8_char_len("a", 1) == 1);
    CHECK(ha_utf8_char_len("\xC3\xA9", 2) == 2);         /* é */
    CHECK(ha_utf8_char_len("\xE2\x82\xAC", 3) == 3);     /* € */
    CHECK(ha_utf8_char_len("\xF0\x9F\x98\x80", 4) == 4); /* 😀 */
    CHECK(ha_utf8_char_len("\xC3", 1) == 0);             /* cut short */
    CHECK(ha_utf8_char_len("\xE2\x82", 2) == 0);         /* cut short */
    CHECK(ha_utf8_char_len("\xC0\xAF", 2) == 0);         /* overlong */
    CHECK(ha_utf8_char_len("\xE0\x80\xAF", 3) == 0);     /* overlong */
    CHECK(ha_utf8_char_len("\xED\xA0\x80", 3) == 0);     /* surrogate */
    CHECK(ha_utf8_char_len("\xF4\x90\x80\x80", 4) == 0); /* above U+10FFFF */
    CHECK(ha_utf8_char_len("\xFF", 1) == 0);
    CHECK(ha_utf8_char_len("\x80", 1) == 0);
    CHECK(ha_utf8_invalid_at("ok \xC3\xA9 \xFF x", 9) == 6);
    CHECK(ha_utf8_invalid_at("ok \xC3\xA9", 5) == 5);

    char s[16];
    strcpy(s, "caf\xC3\xA9");
    ha_utf8_trim_partial(s);
    CHECK(strcmp(s, "caf\xC3\xA9") == 0);
    strcpy(s, "caf\xC3");
    ha_utf8_trim_partial(s);
    CHECK(strcmp(s, "caf") == 0);
    strcpy(s, "x\xF0\x9F\x98");
    ha_utf8_trim_partial(s);
    CHECK(strcmp(s, "x") == 0);
}

static void quoting(void)
{
    char out[64];
    ha_quote(out, sizeof(out), "plain text", 10);
    CHECK(strcmp(out, "plain text") == 0);
    ha_quote(out, sizeof(out), "a\nb\r\tc\"d\\e", 10);
    CHECK(strcmp(out, "a\\nb\\r\\tc\\\"d\\\\e") == 0);
    ha_quote(out, sizeof(out), "nul\0x\x7f\x01", 7);
    CHECK(strcmp(out, "nul\\x00x\\x7F\\x01") == 0);
    ha_quote(out, sizeof(out), "bad \xFF\xC3 end", 10);
    CHECK(strcmp(out, "bad \\xFF\\xC3 end") == 0);
    ha_quote(out, sizeof(out), "caf\xC3\xA9 \xE2\x80\xA8 \xC2\x85", 12);
    CHECK(strcmp(out, "caf\xC3\xA9 \\u2028 \\u0085") == 0);

    /* Cut on a character boundary, marked with "...": 10 bytes of room for 6 "é" (12 bytes). */
    const char *e6 = "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9";
    size_t n = ha_quote(out, 10, e6, 12);
    CHECK(n == strlen(out) && n < 10);
    CHECK(strcmp(out, "\xC3\xA9\xC3\xA9\xC3\xA9...") == 0);
    CHECK(ha_utf8_invalid_at(out, n) == n);
    /* Exactly fitting input is not marked. */
    n = ha_quote(out, 5, "abcd", 4);
    CHECK(strcmp(out, "abcd") == 0);
    n = ha_quote(out, 5, "abcde", 5);
    CHECK(strcmp(out, "a...") == 0);
    /* An escape is never cut in half. */
    ha_quote(out, 8, "ab\n\n\n\n", 6);
    CHECK(strcmp(out, "ab\\n...") == 0);
    ha_quote(out, 1, "abc", 3);
    CHECK(out[0] == '\0');
}

static void json_guard(void)
{
    char *t = malloc(32);
    strcpy(t, "{\"a\":\"ok \xC3\xA9\"}");
    char *r = ha_json_fix_utf8(t);
    CHECK(r == t && strcmp(r, "{\"a\":\"ok \xC3\xA9\"}") == 0);
    free(r);
    t = malloc(32);
    strcpy(t, "{\"a\":\"x\xC3\xFFy\xE2\x82\"}");
    r = ha_json_fix_utf8(t);
    CHECK(r && strcmp(r, "{\"a\":\"x\\ufffd\\ufffdy\\ufffd\\ufffd\"}") == 0);
    free(r);
}

int main(void)
{
    utf8_validation();
    quoting();
    json_guard();
    return unit_report("unit.quote");
}
