#!/usr/bin/python3
"""lint.taskdefs: `healthagg lint` over the task-definition fixtures of tests/lint/taskdefs/.

- good/*.json (realistic tasks: sidecar in awsvpc, FireLens log router, App Mesh proxy sidecar,
  secrets, bridge mode on EC2, describe-task-definition output, an exec-form check without a
  sidecar) must lint clean even with --strict: no finding at all, exit 0.
- bad/RULE.json and bad/RULE--VARIANT.json must produce a finding of rule RULE (exit 1 when it
  is an error, 0 when only warnings, 1 with --strict).
- Every rule id that src/lint/rules.c can emit has at least one bad fixture, and no fixture
  names a rule that does not exist.
- The output formats (text, json, github), exit codes 0/1/2 and usage errors, and the exact
  findings for the field report's task definition.
- deploy/ecs/task-definition.json lints clean with --strict.

Usage: test_taskdefs.py --healthagg BIN --source-dir REPO
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

A = None
FAILED = []


def run(*args, timeout=30):
    r = subprocess.run([A.healthagg, "lint"] + list(args), capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL " + what, flush=True)
    return cond


def fixtures(kind):
    return sorted(glob.glob(os.path.join(A.source_dir, "tests/lint/taskdefs", kind, "*.json")))


def rule_ids_in_source():
    text = open(os.path.join(A.source_dir, "src/lint/rules.c")).read()
    return set(re.findall(r'"((?:taskdef|healthcheck|cmd-shell|sidecar|dependson|start-period|'
                          r'essential|image)-[a-z-]+)"', text))


def lint_json(path, *extra):
    rc, out, err = run("--format", "json", *extra, path)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, f"stdout is not JSON: {out!r}; stderr {err!r}"


def test_good():
    for f in fixtures("good"):
        rc, out, err = run("--strict", f)
        check(rc == 0 and out == "", f"good fixture {os.path.basename(f)} lints clean "
              f"(exit {rc}, stdout {out!r}, stderr {err!r})")


def test_bad():
    seen = set()
    known = rule_ids_in_source()
    for f in fixtures("bad"):
        rule = os.path.basename(f)[:-5].split("--")[0]
        check(rule in known, f"bad fixture {os.path.basename(f)} names a rule rules.c has")
        rc, findings, err = lint_json(f)
        if not check(findings is not None, f"{f}: json output ({err})"):
            continue
        mine = [x for x in findings if x["rule"] == rule]
        if not check(mine, f"bad/{os.path.basename(f)}: rule {rule} fires (saw "
                     f"{[x['rule'] for x in findings]})"):
            continue
        seen.add(rule)
        errors = any(x["severity"] == "error" for x in findings)
        check(rc == (1 if errors else 0), f"{os.path.basename(f)}: exit {rc} matches severities")
        if not errors:
            rc2, _, _ = run("--strict", f)
            check(rc2 == 1, f"{os.path.basename(f)}: warnings fail with --strict (exit {rc2})")
        for x in mine:
            check(x["path"] and x["message"] and x["fix"] and x["file"] == f,
                  f"{os.path.basename(f)}: finding has path, message, fix and file: {x}")
    # Rules that need an image are exercised by test_images.py.
    image_rules = {r for r in known if r.startswith("image-")}
    missing = known - seen - image_rules
    check(not missing, f"every task-definition rule has a bad fixture (missing: {sorted(missing)})")


def test_field_report():
    f = os.path.join(A.source_dir, "tests/lint/taskdefs/bad/cmd-shell-unverified--field-report.json")
    rc, out, err = run(f)
    want = (f"warning {f} containerDefinitions[0].healthCheck.command: CMD-SHELL needs /bin/sh "
            "and the command it runs inside "
            "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/myapp:xxxx, which the task "
            "definition cannot show (ko, distroless and scratch images have no shell); prove it "
            "with --image myapp=IMAGE.tar (from docker save, ko build --tarball or crane pull), "
            "or use the exec form\n")
    check(rc == 0 and out == want, f"field report text output (exit {rc}):\n  got  {out!r}\n  want {want!r}")
    check("1 file, 0 errors, 1 warning" in err, f"summary on stderr: {err!r}")


def test_formats():
    f = os.path.join(A.source_dir, "tests/lint/taskdefs/bad/sidecar-config.json")
    rc, out, err = run(f)
    lines = out.splitlines()
    check(rc == 1 and len(lines) == 1, f"one finding line, exit 1: {rc} {out!r}")
    check(re.match(r"^error \S+sidecar-config\.json containerDefinitions\[1\]\.environment\[0\]\.value: "
                   r"HEALTHAGG_CONFIG checks\[0\]\.timeout: 5s must be shorter than the interval 5s",
                   out) is not None, f"validator's message with the path inside the value: {out!r}")
    rc, findings, err = lint_json(f)
    check(rc == 1 and isinstance(findings, list) and len(findings) == 1 and
          set(findings[0]) == {"severity", "file", "line", "path", "rule", "message", "fix"} and
          findings[0]["line"] == 45 and
          findings[0]["severity"] == "error" and findings[0]["rule"] == "sidecar-config",
          f"json finding fields: {findings}")
    rc, out, err = run("--format", "github", f)
    check(rc == 1 and re.match(r"^::error file=[^,:]+sidecar-config\.json,line=45,title=healthagg "
                               r"lint sidecar-config::containerDefinitions\[1\]", out) is not None,
          f"github annotation with the line of the environment value: {out!r}")
    # Properties are escaped: a file name with ',' and ':' must not break the annotation.
    odd = os.path.join(A.workdir, "a,b:c.json")
    with open(f) as src, open(odd, "w") as dst:
        dst.write(src.read())
    rc, out, err = run("--format=github", odd)
    check("file=" + odd.replace(",", "%2C").replace(":", "%3A") + ",line=45,title=" in out,
          f"github escapes file names: {out!r}")
    rc, findings, err = lint_json(os.path.join(A.source_dir, "tests/lint/taskdefs/good/secrets.json"))
    check(rc == 0 and findings == [], f"clean file in json is []: {findings} {err}")
    # Several files in one run: findings of each, one summary.
    g = os.path.join(A.source_dir, "tests/lint/taskdefs/good/secrets.json")
    rc, out, err = run(g, f)
    check(rc == 1 and out.count("\n") == 1 and "2 files, 1 error" in err, f"two files: {out!r} {err!r}")


def test_exit_codes():
    good = os.path.join(A.source_dir, "tests/lint/taskdefs/good/secrets.json")
    cases = [
        ([], "no task definition given"),
        (["--format", "xml", good], "--format: \"xml\" is not one of"),
        (["--image", "app", good], "is not CONTAINER=PATH"),
        (["--image", "nope=/x.tar", good], "no container named \"nope\""),
        (["--image", "app=/nonexistent.tar", good], "/nonexistent.tar: cannot open"),
        (["--platform", "amd64", good], "is not OS/ARCH"),
        (["--bogus", good], "unknown flag \"--bogus\""),
        (["/nonexistent.json"], "/nonexistent.json: cannot open"),
        (["--format"], "--format: missing value"),
    ]
    for args, want in cases:
        rc, out, err = run(*args)
        check(rc == 2 and want in err and out == "", f"lint {args}: exit 2 naming {want!r} "
              f"(got {rc}, {err!r})")
    bad = os.path.join(A.workdir, "broken.json")
    with open(bad, "w") as fh:
        fh.write('{"containerDefinitions": [\n  {"name": "app",,}]}\n')
    rc, out, err = run(bad)
    check(rc == 2 and "invalid JSON near line 2" in err, f"invalid JSON: exit 2 with the line ({rc} {err!r})")
    arr = os.path.join(A.workdir, "array.json")
    with open(arr, "w") as fh:
        fh.write("[]\n")
    rc, out, err = run(arr)
    check(rc == 2 and "expected a JSON object" in err, f"a JSON array: exit 2 ({rc} {err!r})")
    rc, out, err = run("--help")
    check(rc == 0 and "--image CONTAINER=PATH" in out, f"--help: {rc} {out!r}")


def test_describe_output_paths():
    f = os.path.join(A.source_dir, "tests/lint/taskdefs/bad/sidecar-deadlock--describe-output.json")
    rc, findings, err = lint_json(f)
    check(rc == 1 and findings and findings[0]["path"] ==
          "taskDefinition.containerDefinitions[0].dependsOn[0].condition" and
          open(f).read().splitlines()[findings[0]["line"] - 1].strip() == '"condition": "HEALTHY"',
          f"describe-task-definition output: paths start with taskDefinition. ({findings})")


def test_deploy_recipe():
    for f in sorted(glob.glob(os.path.join(A.source_dir, "deploy/ecs/*.json"))):
        rc, out, err = run("--strict", f)
        check(rc == 0 and out == "", f"{f} lints clean with --strict (exit {rc}): {out}{err}")


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--healthagg", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--workdir", required=True)
    A = ap.parse_args()
    A.healthagg = os.path.abspath(A.healthagg)
    os.makedirs(A.workdir, exist_ok=True)
    for t in (test_good, test_bad, test_field_report, test_formats, test_exit_codes,
              test_describe_output_paths, test_deploy_recipe):
        before = len(FAILED)
        t()
        print(("PASS " if len(FAILED) == before else "FAIL ") + t.__name__, flush=True)
    if FAILED:
        print(f"{len(FAILED)} check(s) failed", flush=True)
        sys.exit(1)
    print("all lint task-definition checks passed", flush=True)


if __name__ == "__main__":
    main()
