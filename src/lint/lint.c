/* lint.c - `healthagg lint`: flags, reading task definitions and images, output formats, exit.
 *
 * Line numbers (json "line", github "line=") come from jsonline.c.
 * Everything is read before anything is printed: every file is parsed and every --image is
 * loaded first, so a usage problem or an unreadable input exits 2 with one line on stderr and
 * no half report. Findings go to stdout (text, json or github annotations); notes on what was
 * read (image kind, platform used) and the summary go to stderr, so stdout stays parseable.
 * Exit: 0 clean or warnings only, 1 errors (or warnings with --strict), 2 usage/unreadable. */
#include "healthagg/lint.h"
#include "healthagg/quote.h"

#include <cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TASKDEF_MAX (4 * 1024 * 1024)
#define MAX_IMAGES 64

static const char usage[] =
    "usage: healthagg lint [--strict] [--format text|json|github] [--image CONTAINER=PATH]...\n"
    "                      [--platform OS/ARCH] TASKDEF.json...\n"
    "\n"
    "Checks ECS task definitions (RegisterTaskDefinition JSON or describe-task-definition\n"
    "output) for health-check mistakes before deploy.\n"
    "\n"
    "  --image CONTAINER=PATH  check CONTAINER's health-check command against the image's real\n"
    "                          filesystem: PATH is a docker save / ko build --tarball / crane\n"
    "                          pull tarball, or an OCI image layout (directory or tar)\n"
    "  --platform OS/ARCH      which image of an image index to read (default linux/amd64)\n"
    "  --format F              text (default): \"error|warning FILE PATH: problem; fix\";\n"
    "                          json: a list of findings; github: ::error annotations for CI\n"
    "  --strict                warnings fail too (exit 1)\n"
    "\n"
    "Exit: 0 clean or warnings only, 1 errors (or warnings with --strict), 2 usage or\n"
    "unreadable input.\n";

typedef struct doc {
    const char *file;
    cJSON *root;
    char *text; /* kept for the line numbers of findings; owned */
    size_t len;
    ha_findings f;
} doc;

static void fmt(char *out, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));

static void fmt(char *out, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(out, len, f, ap);
    va_end(ap);
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "healthagg lint: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(TASKDEF_MAX + 1);
    if (!buf) {
        fclose(f);
        fprintf(stderr, "healthagg lint: out of memory\n");
        return -1;
    }
    size_t n = fread(buf, 1, TASKDEF_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > TASKDEF_MAX) {
        fprintf(stderr, "healthagg lint: %s: %s\n", path,
                bad ? "read error" : "larger than 4 MiB: not a task definition");
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static cJSON *parse_doc(doc *d)
{
    const char *path = d->file;
    char *text;
    size_t len;
    if (read_file(path, &text, &len) != 0)
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        unsigned line = 1, col = 1;
        for (const char *p = text; end && p < end && p < text + len; p++) {
            if (*p == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        fprintf(stderr,
                "healthagg lint: %s: invalid JSON near line %u column %u; check quotes, commas "
                "and braces\n",
                path, line, col);
    } else if (!cJSON_IsObject(root)) {
        fprintf(stderr,
                "healthagg lint: %s: expected a JSON object (a task definition), got something "
                "else\n",
                path);
        cJSON_Delete(root);
        root = NULL;
    }
    if (root) {
        d->text = text;
        d->len = len;
    } else {
        free(text);
    }
    return root;
}

static bool doc_has_container(const cJSON *root, const char *name)
{
    const cJSON *td = cJSON_GetObjectItemCaseSensitive(root, "taskDefinition");
    if (!cJSON_IsObject(td))
        td = root;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(td, "containerDefinitions"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return true;
    }
    return false;
}

/* GitHub workflow commands: data escapes %, CR, LF; properties also ':' and ','. */
static void gh_escape(FILE *out, const char *s, bool property)
{
    for (; *s; s++) {
        switch (*s) {
        case '%':
            fputs("%25", out);
            break;
        case '\r':
            fputs("%0D", out);
            break;
        case '\n':
            fputs("%0A", out);
            break;
        case ':':
            fputs(property ? "%3A" : ":", out);
            break;
        case ',':
            fputs(property ? "%2C" : ",", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

static void print_text(FILE *out, const doc *d, const ha_finding *x)
{
    fprintf(out, "%s %s %s: %s%s%s\n", x->sev == HA_SEV_ERROR ? "error" : "warning", d->file,
            x->path, x->message, x->fix[0] ? "; " : "", x->fix);
}

static void print_github(FILE *out, const doc *d, const ha_finding *x)
{
    fprintf(out, "::%s file=", x->sev == HA_SEV_ERROR ? "error" : "warning");
    gh_escape(out, d->file, true);
    unsigned line = ha_json_line(d->text, d->len, x->path);
    if (line)
        fprintf(out, ",line=%u", line);
    fputs(",title=", out);
    char title[80];
    fmt(title, sizeof(title), "healthagg lint %s", x->rule);
    gh_escape(out, title, true);
    fputs("::", out);
    char msg[2048];
    fmt(msg, sizeof(msg), "%s: %s%s%s", x->path, x->message, x->fix[0] ? "; " : "", x->fix);
    gh_escape(out, msg, false);
    fputc('\n', out);
}

static int print_json(FILE *out, const doc *docs, size_t ndocs)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return -1;
    for (size_t i = 0; i < ndocs; i++)
        for (size_t k = 0; k < docs[i].f.n; k++) {
            const ha_finding *x = &docs[i].f.v[k];
            cJSON *o = cJSON_CreateObject();
            if (!o || !cJSON_AddItemToArray(arr, o) ||
                !cJSON_AddStringToObject(o, "severity",
                                         x->sev == HA_SEV_ERROR ? "error" : "warning") ||
                !cJSON_AddStringToObject(o, "file", docs[i].file) ||
                !cJSON_AddNumberToObject(o, "line",
                                         ha_json_line(docs[i].text, docs[i].len, x->path)) ||
                !cJSON_AddStringToObject(o, "path", x->path) ||
                !cJSON_AddStringToObject(o, "rule", x->rule) ||
                !cJSON_AddStringToObject(o, "message", x->message) ||
                !cJSON_AddStringToObject(o, "fix", x->fix)) {
                cJSON_Delete(arr);
                return -1;
            }
        }
    /* File names and task-definition strings may hold any bytes: keep the output UTF-8 JSON. */
    char *s = ha_json_fix_utf8(cJSON_Print(arr));
    cJSON_Delete(arr);
    if (!s)
        return -1;
    fprintf(out, "%s\n", s);
    free(s);
    return 0;
}

int ha_cmd_lint(int argc, char **argv)
{
    bool strict = false;
    const char *format = "text", *platform = "linux/amd64";
    ha_lint_image images[MAX_IMAGES];
    size_t nimages = 0;
    doc *docs = calloc((size_t)argc, sizeof(*docs));
    size_t ndocs = 0;
    int rc = 2;
    if (!docs) {
        fprintf(stderr, "healthagg lint: out of memory\n");
        return 2;
    }
    memset(images, 0, sizeof(images));
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            rc = 0;
            goto out;
        }
        if (strcmp(a, "--strict") == 0) {
            strict = true;
            continue;
        }
        const char *names[] = {"--format", "--image", "--platform"};
        int which = -1;
        for (int k = 0; k < 3; k++) {
            size_t n = strlen(names[k]);
            if (strncmp(a, names[k], n) == 0 && (a[n] == '=' || a[n] == '\0')) {
                which = k;
                if (a[n] == '=')
                    v = a + n + 1;
                else if (i + 1 < argc)
                    v = argv[++i];
                else {
                    fprintf(stderr, "healthagg lint: %s: missing value\n%s", a, usage);
                    goto out;
                }
            }
        }
        if (which == 0) {
            if (strcmp(v, "text") && strcmp(v, "json") && strcmp(v, "github")) {
                fprintf(stderr,
                        "healthagg lint: --format: \"%s\" is not one of text, json, "
                        "github\n",
                        v);
                goto out;
            }
            format = v;
        } else if (which == 1) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) {
                fprintf(stderr,
                        "healthagg lint: --image: \"%s\" is not CONTAINER=PATH (e.g. --image "
                        "app=app.tar)\n",
                        v);
                goto out;
            }
            if (nimages == MAX_IMAGES) {
                fprintf(stderr, "healthagg lint: --image: at most %d\n", MAX_IMAGES);
                goto out;
            }
            char *name = strndup(v, (size_t)(eq - v));
            if (!name) {
                fprintf(stderr, "healthagg lint: out of memory\n");
                goto out;
            }
            for (size_t k = 0; k < nimages; k++)
                if (strcmp(images[k].container, name) == 0) {
                    fprintf(stderr, "healthagg lint: --image: container \"%s\" given twice\n",
                            name);
                    free(name);
                    goto out;
                }
            images[nimages].container = name;
            images[nimages].path = eq + 1;
            nimages++;
        } else if (which == 2) {
            if (!strchr(v, '/')) {
                fprintf(stderr,
                        "healthagg lint: --platform: \"%s\" is not OS/ARCH (e.g. "
                        "linux/arm64)\n",
                        v);
                goto out;
            }
            platform = v;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "healthagg lint: unknown flag \"%s\"; see 'healthagg lint --help'\n",
                    a);
            goto out;
        } else {
            docs[ndocs++].file = a;
        }
    }
    if (ndocs == 0) {
        fprintf(stderr, "healthagg lint: no task definition given\n%s", usage);
        goto out;
    }
    for (size_t i = 0; i < ndocs; i++)
        if (!(docs[i].root = parse_doc(&docs[i])))
            goto out;
    for (size_t k = 0; k < nimages; k++) {
        bool found = false;
        for (size_t i = 0; i < ndocs && !found; i++)
            found = doc_has_container(docs[i].root, images[k].container);
        if (!found) {
            fprintf(stderr,
                    "healthagg lint: --image %s=%s: no container named \"%s\" in the task "
                    "definitions given\n",
                    images[k].container, images[k].path, images[k].container);
            goto out;
        }
        char err[HA_LINT_ERR * 2];
        if (ha_image_load(images[k].path, platform, &images[k].img, err, sizeof(err)) != 0) {
            fprintf(stderr, "healthagg lint: --image %s=%s: %s\n", images[k].container,
                    images[k].path, err);
            goto out;
        }
        images[k].loaded = true;
        const ha_image *im = &images[k].img;
        fprintf(stderr, "healthagg lint: --image %s=%s: %s, %s, %u layer%s, %zu paths%s%s\n",
                images[k].container, images[k].path, im->kind, im->platform, im->layers,
                im->layers == 1 ? "" : "s", im->fs.count, im->platform_note[0] ? "; " : "",
                im->platform_note);
    }
    size_t errors = 0, warnings = 0;
    for (size_t i = 0; i < ndocs; i++) {
        ha_lint_taskdef(docs[i].root, images, nimages, &docs[i].f);
        if (docs[i].f.oom) {
            fprintf(stderr, "healthagg lint: out of memory\n");
            goto out;
        }
        for (size_t k = 0; k < docs[i].f.n; k++) {
            if (docs[i].f.v[k].sev == HA_SEV_ERROR)
                errors++;
            else
                warnings++;
            if (strcmp(format, "text") == 0)
                print_text(stdout, &docs[i], &docs[i].f.v[k]);
            else if (strcmp(format, "github") == 0)
                print_github(stdout, &docs[i], &docs[i].f.v[k]);
        }
    }
    if (strcmp(format, "json") == 0 && print_json(stdout, docs, ndocs) != 0) {
        fprintf(stderr, "healthagg lint: out of memory\n");
        goto out;
    }
    fprintf(stderr, "healthagg lint: %zu file%s, %zu error%s, %zu warning%s%s\n", ndocs,
            ndocs == 1 ? "" : "s", errors, errors == 1 ? "" : "s", warnings,
            warnings == 1 ? "" : "s", strict && warnings && !errors ? " (--strict: failing)" : "");
    rc = errors || (strict && warnings) ? 1 : 0;
out:
    fflush(stdout);
    for (size_t i = 0; i < ndocs; i++) {
        cJSON_Delete(docs[i].root);
        free(docs[i].text);
        ha_findings_free(&docs[i].f);
    }
    free(docs);
    for (size_t k = 0; k < nimages; k++) {
        free((char *)images[k].container);
        if (images[k].loaded)
            ha_image_free(&images[k].img);
    }
    return rc;
}
