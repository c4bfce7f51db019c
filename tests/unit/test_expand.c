/* test_expand.c - ${VAR} expansion of secret-bearing config values: substitution, escapes,
 * and the errors (unset, unclosed, bad names) that must name the field. */
#include "healthagg/expand.h"
#include "unit.h"

#include <stdlib.h>

static void expands_to(const char *in, const char *want)
{
    char err[256] = "";
    char *out = ha_expand_env(in, "checks[0].metadata.x", err, sizeof(err));
    unit_checks++;
    if (!out || strcmp(out, want) != 0) {
        unit_failures++;
        fprintf(stderr, "expand(\"%s\"): got \"%s\" (%s), want \"%s\"\n", in, out ? out : "NULL",
                err, want);
    }
    free(out);
}

static void fails_with(const char *in, const char *want)
{
    char err[256] = "";
    char *out = ha_expand_env(in, "checks[0].metadata.x", err, sizeof(err));
    CHECK(out == NULL);
    free(out);
    CHECK_STR_CONTAINS(err, "checks[0].metadata.x: ");
    CHECK_STR_CONTAINS(err, want);
}

int main(void)
{
    setenv("HA_T_TOKEN", "s3cret", 1);
    setenv("HA_T_EMPTY", "", 1);
    setenv("_u9", "u", 1);
    expands_to("", "");
    expands_to("plain", "plain");
    expands_to("Bearer ${HA_T_TOKEN}", "Bearer s3cret");
    expands_to("${HA_T_TOKEN}${HA_T_TOKEN}", "s3crets3cret");
    expands_to("a${HA_T_EMPTY}b", "ab");
    expands_to("${_u9}", "u");
    expands_to("$$", "$");
    expands_to("$${HA_T_TOKEN}", "${HA_T_TOKEN}");
    expands_to("cost: $5 $", "cost: $5 $");
    expands_to("{HA_T_TOKEN}", "{HA_T_TOKEN}");
    fails_with("${HA_T_UNSET_VARIABLE}", "${HA_T_UNSET_VARIABLE} is not set");
    fails_with("x ${HA_T_TOKEN", "without a closing");
    fails_with("${}", "is not a variable name");
    fails_with("${9A}", "is not a variable name");
    fails_with("${A-B}", "is not a variable name");
    return unit_report("unit.expand");
}
