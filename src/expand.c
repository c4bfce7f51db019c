/* expand.c - ${VAR} expansion for config values that carry secrets (see expand.h).
 *
 * Trade-off: expansion happens once at load, not per probe: a rotated secret needs a restart
 * (which is how ECS delivers a new secret anyway: a new task), and a probe never touches the
 * environment. An unset variable is a configuration error, never an empty string: a check
 * that silently sent "Bearer " would fail for a reason nobody could see. */
#include "healthagg/expand.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

/* One pass: measures (out == NULL) or writes. Returns the length, or -1 with err set. */
static long expand(const char *in, char *out, const char *path, char *err, size_t errlen)
{
    size_t n = 0;
    for (const char *s = in; *s;) {
        if (s[0] == '$' && s[1] == '$') {
            if (out)
                out[n] = '$';
            n++;
            s += 2;
            continue;
        }
        if (!(s[0] == '$' && s[1] == '{')) {
            if (out)
                out[n] = *s;
            n++;
            s++;
            continue;
        }
        const char *name = s + 2, *end = strchr(name, '}');
        if (!end) {
            snprintf(err, errlen, "%s: \"${\" without a closing \"}\" (write $$ for a literal $)",
                     path);
            return -1;
        }
        size_t len = (size_t)(end - name);
        bool ok = len > 0 && len < 128;
        for (size_t i = 0; ok && i < len; i++)
            ok = name_char(name[i], i == 0);
        if (!ok) {
            snprintf(err, errlen,
                     "%s: \"${%.*s}\" is not a variable name (letters, digits and _, not starting "
                     "with a digit)",
                     path, (int)(len > 60 ? 60 : len), name);
            return -1;
        }
        char var[128];
        memcpy(var, name, len);
        var[len] = '\0';
        const char *val = getenv(var);
        if (!val) {
            snprintf(err, errlen,
                     "%s: ${%s} is not set; set the environment variable (in ECS, a container "
                     "\"secrets\" or \"environment\" entry) or remove the reference",
                     path, var);
            return -1;
        }
        size_t vl = strlen(val);
        if (out)
            memcpy(out + n, val, vl);
        n += vl;
        s = end + 1;
    }
    return (long)n;
}

char *ha_expand_env(const char *in, const char *path, char *err, size_t errlen)
{
    long n = expand(in, NULL, path, err, errlen);
    if (n < 0)
        return NULL;
    char *out = malloc((size_t)n + 1);
    if (!out) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    expand(in, out, path, err, errlen);
    out[n] = '\0';
    return out;
}
