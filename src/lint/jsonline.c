/* jsonline.c - the line of a JSON path in a document's text, for CI annotations.
 *
 * cJSON keeps no positions, so the text is scanned once more per finding, tracking the path of
 * each value (`a.b[2].c`); the first value whose path matches gives its line. A path that names
 * something absent (a missing key the finding asks for) falls back to its nearest existing
 * parent. Only documents cJSON already accepted are scanned, but the scanner does not rely on
 * it: it stops at a NUL as cJSON does, always makes progress, and bounds its recursion. */
#include "healthagg/lint.h"

#include <string.h>

#define PATH_CAP 512
#define MAX_DEPTH 1000 /* cJSON's own nesting limit */

typedef struct scan {
    const char *p, *end;
    unsigned line;
    const char *want;
    char path[PATH_CAP];
    unsigned found;
} scan;

static void ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        if (*s->p == '\n')
            s->line++;
        s->p++;
    }
}

/* Skips a string at s->p (on its opening quote); copies its raw bytes into out when given. */
static void string(scan *s, char *out, size_t outlen)
{
    size_t o = 0;
    s->p++;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\' && s->p + 1 < s->end) {
            s->p++;
        } else if (*s->p == '\n') {
            s->line++;
        }
        if (out && o + 1 < outlen)
            out[o++] = *s->p;
        s->p++;
    }
    if (s->p < s->end)
        s->p++;
    if (out)
        out[o] = '\0';
}

static void value(scan *s, size_t plen, unsigned depth);

/* Appends ".key" (or "key" at the top) or "[idx]" to the path of the enclosing value. */
static void append(scan *s, size_t plen, const char *key, unsigned idx)
{
    if (plen + 1 >= PATH_CAP)
        return;
    if (key)
        snprintf(s->path + plen, PATH_CAP - plen, "%s%s", plen ? "." : "", key);
    else
        snprintf(s->path + plen, PATH_CAP - plen, "[%u]", idx);
}

static void value(scan *s, size_t plen, unsigned depth)
{
    ws(s);
    if (s->p >= s->end || depth > MAX_DEPTH)
        return;
    if (!s->found && strcmp(s->path, s->want) == 0)
        s->found = s->line;
    if (*s->p == '{' || *s->p == '[') {
        bool obj = *s->p == '{';
        char close = obj ? '}' : ']';
        s->p++;
        for (unsigned i = 0;; i++) {
            const char *before = s->p;
            ws(s);
            if (s->p >= s->end)
                return;
            if (*s->p == close) {
                s->p++;
                return;
            }
            if (obj) {
                char key[256];
                string(s, key, sizeof(key));
                ws(s);
                if (s->p < s->end && *s->p == ':')
                    s->p++;
                append(s, plen, key, 0);
            } else {
                append(s, plen, NULL, i);
            }
            value(s, strlen(s->path), depth + 1);
            s->path[plen] = '\0';
            ws(s);
            if (s->p < s->end && *s->p == ',')
                s->p++;
            else if (s->p == before && s->p < s->end)
                s->p++; /* not JSON after all: never loop in place */
        }
    }
    if (*s->p == '"') {
        string(s, NULL, 0);
        return;
    }
    const char *start = s->p;
    while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
        s->p++;
    if (s->p == start)
        s->p++; /* a stray ',', '}' or ']' where a value belongs */
}

unsigned ha_json_line(const char *text, size_t len, const char *path)
{
    char want[PATH_CAP];
    snprintf(want, sizeof(want), "%s", path);
    const char *nul = memchr(text, '\0', len);
    if (nul)
        len = (size_t)(nul - text);
    for (;;) {
        scan s = {text, text + len, 1, want, "", 0};
        value(&s, 0, 0);
        if (s.found || !want[0])
            return s.found;
        /* Not there: try the parent ("a.b[2].c" -> "a.b[2]" -> "a.b" -> "a"). */
        char *dot = strrchr(want, '.'), *br = strrchr(want, '[');
        char *cut = dot > br ? dot : br;
        if (!cut)
            want[0] = '\0';
        else
            *cut = '\0';
    }
}
