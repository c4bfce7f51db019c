/* quote.h - bytes from the outside world made safe to show: valid UTF-8, one line, printable.
 *
 * Reasons quote what a target sent or what a user configured (an expect_body, a status line,
 * trailing text in a config); they end up in JSON log lines, in /health and in the one-line
 * /readyz answer. Every such quote goes through ha_quote(), which never cuts a character in
 * half and escapes whatever is not printable UTF-8. The JSON writers additionally pass their
 * output through ha_json_fix_utf8(), so no path can ever emit invalid JSON. Pure functions, no
 * libuv; shared by the daemon, the CLI commands and every check type. */
#ifndef HEALTHAGG_QUOTE_H
#define HEALTHAGG_QUOTE_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the well-formed UTF-8 character at s (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0 when the bytes at s are not one or are cut short by len. */
size_t ha_utf8_char_len(const char *s, size_t len);
/* Offset of the first byte that is not part of well-formed UTF-8; len when all of it is. */
size_t ha_utf8_invalid_at(const char *s, size_t len);
/* Drops a character cut in half at the end of the NUL-terminated s (after a truncating
 * snprintf): s then ends on a character boundary. */
void ha_utf8_trim_partial(char *s);

/* Writes `in` (len bytes, anything) to out as printable, valid UTF-8, always NUL-terminated:
 * printable characters as they are; \\ and \" escaped; \n \r \t as such; other control
 * characters, U+2028/U+2029 and bytes that are not UTF-8 as \xHH or \uHHHH. When it does not
 * fit in outlen, it is cut on a character (or escape) boundary and ends with "...".
 * Returns the length written. */
size_t ha_quote(char *out, size_t outlen, const char *in, size_t len);
/* The same without escaping \ and " (for text that is not inside quotes, such as a reason read
 * back from the sidecar). */
size_t ha_printable(char *out, size_t outlen, const char *in, size_t len);

/* For JSON text (as cJSON prints it): replaces every byte that is not well-formed UTF-8 by the
 * escape \ufffd. Non-ASCII bytes only occur inside JSON strings, so the result is valid JSON.
 * Returns `text` when nothing needed replacing, else a new malloc'ed string (and frees `text`);
 * NULL when out of memory (`text` is freed too). */
char *ha_json_fix_utf8(char *text);

#endif
