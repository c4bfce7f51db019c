/* unit.h - the smallest test harness that does the job: CHECK records a failure with its
 * location and keeps going; main returns non-zero if anything failed. */
#ifndef HEALTHAGG_UNIT_H
#define HEALTHAGG_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failures;
static int unit_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        unit_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            unit_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                            \
    do {                                                                                           \
        unit_checks++;                                                                             \
        if (!strstr((hay), (needle))) {                                                            \
            unit_failures++;                                                                       \
            fprintf(stderr, "%s:%d: expected \"%s\" to contain \"%s\"\n", __FILE__, __LINE__,      \
                    (hay), (needle));                                                              \
        }                                                                                          \
    } while (0)

static inline int unit_report(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, unit_checks, unit_failures);
    return unit_failures ? 1 : 0;
}

#endif
