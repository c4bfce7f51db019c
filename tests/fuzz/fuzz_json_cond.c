/* fuzz_json_cond.c - libFuzzer target for src/checks/json_cond.c: expect_json conditions and
 * their evaluation against a hostile body.
 *
 * Input: the conditions (a JSON list, as in a config) up to the first NUL byte, then the body
 * (any bytes). Conditions that do not parse are replaced by a fixed list that walks several
 * paths with every operator, so every input exercises the evaluator. Each path as shown in
 * reasons is printable UTF-8 and is parsed again on its own. Checks: no crash, leak or UB; a reason
 * is produced exactly when a condition fails, fits its buffer, is valid UTF-8 on one line;
 * evaluation is deterministic and never reads past the body (the body is copied to an exact-size
 * buffer, so ASan sees any overread). */
#include "healthagg/json_cond.h"
#include "healthagg/quote.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char fallback[] =
    "[{\"path\": \"$.status\", \"equals\": \"UP\"}, {\"path\": \"$.a[0].b\", \"not_equals\": "
    "{\"x\": [1, null]}}, {\"path\": \"$.n\", \"lt\": 100}, {\"path\": \"$.n\", \"ge\": -1.5}, "
    "{\"path\": \"$[\\\"k.k\\\"][-1]\", \"exists\": true}, {\"path\": \"$\", \"exists\": false}]";

static void die(const char *what)
{
    fprintf(stderr, "fuzz_json_cond: %s\n", what);
    abort();
}

static void check_reason(const char *r, size_t cap)
{
    size_t n = strnlen(r, cap);
    if (n == cap)
        die("reason not NUL-terminated within its buffer");
    if (ha_utf8_invalid_at(r, n) != n)
        die("reason is not valid UTF-8");
    if (memchr(r, '\n', n) || memchr(r, '\r', n))
        die("reason is more than one line");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t clen = nul ? (size_t)(nul - data) : 0;
    size_t blen = nul ? size - clen - 1 : size;
    char *conds_text = malloc(clen + 1), *body = malloc(blen ? blen : 1);
    if (!conds_text || !body)
        die("out of memory");
    memcpy(conds_text, data, clen);
    conds_text[clen] = '\0';
    memcpy(body, nul ? nul + 1 : data, blen);

    ha_json_conds c;
    char err[256];
    cJSON *list = cJSON_Parse(conds_text);
    if (!list || ha_json_conds_parse(list, "fuzz", &c, err, sizeof(err)) != 0) {
        if (list)
            check_reason(err, sizeof(err));
        cJSON_Delete(list);
        list = cJSON_Parse(fallback);
        if (!list || ha_json_conds_parse(list, "fuzz", &c, err, sizeof(err)) != 0)
            die("the fallback conditions do not parse");
    }
    /* every path again on its own: parse, walk the conditions' own list with it */
    for (size_t i = 0; i < c.n; i++) {
        ha_json_path p;
        check_reason(c.items[i].path.text, strlen(c.items[i].path.text) + 1);
        if (ha_json_path_parse(c.items[i].path.text, &p, err, sizeof(err)) == 0)
            (void)ha_json_path_get(&p, list);
        ha_json_path_free(&p);
    }
    static const size_t sizes[] = {1, 8, 48, 192};
    char first[192], reason[192];
    bool ok = ha_json_conds_eval(&c, body, blen, false, blen, first, sizeof(first));
    if (!ok)
        check_reason(first, sizeof(first));
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        memset(reason, 'x', sizeof(reason));
        bool again = ha_json_conds_eval(&c, body, blen, size % 2, blen, reason, sizes[k]);
        if (again != ok)
            die("evaluation is not deterministic");
        if (!again)
            check_reason(reason, sizes[k]);
        if (!again && sizes[k] == sizeof(reason) && !(size % 2) && strcmp(reason, first) != 0)
            die("the same evaluation gave another reason");
    }
    ha_json_conds_free(&c);
    cJSON_Delete(list);
    free(conds_text);
    free(body);
    return 0;
}
