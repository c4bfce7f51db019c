"""Configuration: `validate` and `serve` reject bad configs with exit 2 and one stderr line naming
the field; config from --config, HEALTHAGG_CONFIG_FILE and inline HEALTHAGG_CONFIG; listen from
HEALTHAGG_LISTEN; flags win over config and environment."""
import json
import os
import socket
import tempfile

from harness import *  # noqa: F401,F403

GOOD_CHECK = {"name": "app", "url": "http://127.0.0.1:8080/healthz"}


def cfg(**top):
    doc = {"checks": [dict(GOOD_CHECK)]}
    doc.update(top)
    return doc


def with_check(**fields):
    c = dict(GOOD_CHECK)
    c.update(fields)
    return {"checks": [c]}


# (case name, config document or raw text, a field name the error must contain, and accepted
# alternatives when the contract allows more than one)
BAD = [
    ("unknown top-level key", cfg(bogus=1), ["bogus"]),
    ("unknown check key", with_check(bogus=1), ["checks[0].bogus"]),
    ("unknown defaults key", cfg(defaults={"intervall": "5s"}), ["defaults.intervall"]),
    ("interval wrong type", with_check(interval=5), ["checks[0].interval"]),
    ("failure_threshold wrong type", with_check(failure_threshold="3"),
     ["checks[0].failure_threshold"]),
    ("critical wrong type", with_check(critical="yes"), ["checks[0].critical"]),
    ("url wrong type", with_check(url=8080), ["checks[0].url"]),
    ("checks wrong type", {"checks": {"app": GOOD_CHECK}}, ["checks"]),
    ("bad url scheme", with_check(url="ftp://127.0.0.1/x"), ["checks[0].url"]),
    ("url not a url", with_check(url="localhost 8080"), ["checks[0].url"]),
    ("url without host", with_check(url="http:///healthz"), ["checks[0].url"]),
    ("url bad port", with_check(url="http://127.0.0.1:99999/"), ["checks[0].url"]),
    ("bad duration", with_check(interval="5 parsecs"), ["checks[0].interval"]),
    ("bad duration unit", with_check(timeout="2h5"), ["checks[0].timeout"]),
    ("bad defaults duration", cfg(defaults={"timeout": "soon"}), ["defaults.timeout"]),
    ("timeout >= interval", with_check(interval="1s", timeout="1s"),
     ["checks[0].timeout", "checks[0].interval"]),
    ("timeout > interval via defaults", cfg(defaults={"interval": "1s", "timeout": "2s"}),
     ["checks[0].timeout", "checks[0].interval", "defaults.timeout", "defaults.interval"]),
    ("no checks (empty)", {"checks": []}, ["checks"]),
    ("no checks (absent)", {"listen": "127.0.0.1:8099"}, ["checks"]),
    ("zero threshold", with_check(failure_threshold=0), ["checks[0].failure_threshold"]),
    ("bad listen", cfg(listen="127.0.0.1:notaport"), ["listen"]),
    ("not JSON", '{"checks": [', [""]),
    # issue 8 item 6: nothing that silently changes the document; messages that do not mislead
    ("text after the document",
     '{"checks": [{"name": "app", "url": "http://127.0.0.1:8080/"}]}},"listen":"0.0.0.0:9"}',
     ["unexpected text after the JSON document at line 1 column 63"]),
    ("two documents", json.dumps(cfg()) + "\n" + json.dumps(cfg()),
     ["unexpected text after the JSON document at line 2 column 1"]),
    ("a comment after the document", json.dumps(cfg()) + " // prod", ["unexpected text"]),
    ("empty name", with_check(name=""), ["checks[0].name: empty"]),
    ("NUL in a string", with_check(expect_body="a\u0000b"), ["\\u0000"]),
    ("zero threshold says at least 1", with_check(failure_threshold=0),
     ["checks[0].failure_threshold: 0 must be at least 1"]),
    ("number printed as given", with_check(max_response_bytes=16777217),
     ["checks[0].max_response_bytes: 16777217 must be at most 16777216"]),
    ("a whole number printed whole", with_check(failure_threshold=340),
     ["checks[0].failure_threshold: 340 must be at most 100"]),
    ("listen without host", cfg(listen=":8099"),
     ["listen: host missing: use 127.0.0.1:8099 or 0.0.0.0:8099"]),
    ("userinfo in url", with_check(url="http://admin:secret@127.0.0.1:8080/"), ['"headers"']),
    ("expect_status 1xx", with_check(expect_status=[101]), ["checks[0].expect_status[0]"]),
]


def write_config(doc):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    f.write(doc if isinstance(doc, str) else json.dumps(doc))
    f.close()
    return f.name


def expect_invalid(r, fields, what):
    errs = lines_of(r.err)
    expect(r.rc == 2, f"{what}: expected exit 2, saw {r}")
    expect(len(errs) == 1, f"{what}: expected exactly one stderr line, saw {r.err!r}")
    expect(any(f in errs[0] for f in fields),
           f"{what}: stderr should name {' or '.join(map(repr, fields))}, saw {errs[0]!r}")


@test
def validate_rejects_bad_configs(ctx):
    problems = []
    for name, doc, fields in BAD:
        path = write_config(doc)
        try:
            r = cli(["validate", "--config", path])
            try:
                expect_invalid(r, fields, f"validate [{name}]")
            except TestFailure as e:
                problems.append(str(e))
        finally:
            os.unlink(path)
    expect(not problems, f"{len(problems)} of {len(BAD)} bad configs mishandled:\n  " +
           "\n  ".join(problems))


@test
def validate_names_a_directory_and_flag_conflicts(ctx):
    d = tempfile.mkdtemp()
    try:
        r = cli(["validate", "--config", d])
        expect_invalid(r, [f"--config: {d} is a directory"], "validate --config DIR")
    finally:
        os.rmdir(d)
    r = cli(["validate", "--check", "app=http://127.0.0.1:8080/", "--interval", "1s"])
    expect_invalid(r, ["--interval 1s: must be longer than the timeout 2s (the built-in default)"],
                   "validate --interval 1s with the default timeout")
    expect("checks[0].timeout" not in r.err, f"the flag conflict blames a config field: {r}")


@test
def validate_accepts_good_configs(ctx):
    docs = [cfg(),
            {"listen": "127.0.0.1:8099",
             "defaults": {"interval": "5s", "timeout": "2s", "failure_threshold": 3,
                          "success_threshold": 1, "start_period": "60s"},
             "checks": [{"name": "app", "url": "http://127.0.0.1:8080/healthz",
                         "expect_status": ["200-399"]},
                        {"name": "db", "url": "tcp://10.0.0.12:5432", "critical": False}]},
            with_check(interval="2m", timeout="250ms")]
    for doc in docs:
        path = write_config(doc)
        try:
            r = cli(["validate", "--config", path])
            expect_eq((r.rc, r.err), (0, ""), f"validate of {json.dumps(doc)} ({r})")
        finally:
            os.unlink(path)


@test
def validate_reads_env_inline_and_file(ctx):
    r = cli(["validate"], env={"HEALTHAGG_CONFIG": json.dumps(cfg())})
    expect_eq(r.rc, 0, f"validate with a good HEALTHAGG_CONFIG ({r})")
    r = cli(["validate"], env={"HEALTHAGG_CONFIG": json.dumps(with_check(interval="fast"))})
    expect_invalid(r, ["checks[0].interval"], "validate with a bad HEALTHAGG_CONFIG")
    path = write_config(with_check(bogus=True))
    try:
        r = cli(["validate"], env={"HEALTHAGG_CONFIG_FILE": path})
        expect_invalid(r, ["checks[0].bogus"], "validate with a bad HEALTHAGG_CONFIG_FILE")
    finally:
        os.unlink(path)
    path = write_config(cfg())
    try:
        r = cli(["validate"], env={"HEALTHAGG_CONFIG_FILE": path})
        expect_eq(r.rc, 0, f"validate with a good HEALTHAGG_CONFIG_FILE ({r})")
    finally:
        os.unlink(path)


@test
def serve_rejects_bad_config_and_usage(ctx):
    subset = ("unknown top-level key", "unknown check key", "unknown defaults key", "bad duration",
              "bad url scheme", "timeout >= interval", "no checks (empty)")
    for name, doc, fields in [b for b in BAD if b[0] in subset]:
        r = cli(["serve", "--listen", "127.0.0.1:0"], env={"HEALTHAGG_CONFIG": json.dumps(doc)
                                                           if not isinstance(doc, str) else doc},
                timeout=5)
        expect_invalid(r, fields, f"serve [{name}]")
    ok = ["--check", "app=http://127.0.0.1:8080/"]
    flag_cases = [
        (["--interval", "5 parsecs"] + ok, ["interval"]),
        (["--timeout", "1s", "--interval", "500ms"] + ok, ["timeout", "interval"]),
        (["--check", "app=ftp://x/"], ["url", "check"]),
        (["--failure-threshold", "many"] + ok, ["failure"]),
        (["--bogus-flag"] + ok, ["bogus"]),
        ([], ["check"]),
    ]
    for args, fields in flag_cases:
        r = cli(["serve", "--listen", "127.0.0.1:0"] + args, timeout=5)
        expect_invalid(r, fields, f"serve {' '.join(args)}")


@test
def serve_port_in_use_exits_2_naming_listen(ctx):
    port = ctx.busy_port()
    r = cli(["serve", "--listen", f"127.0.0.1:{port}", "--check",
             "app=http://127.0.0.1:8080/"], timeout=5)
    expect_invalid(r, ["listen"], f"serve on a port in use ({port})")


@test
def serve_config_sources_and_precedence(ctx):
    app = ctx.testapp()
    held = ctx.dead_port()
    doc = {"listen": f"127.0.0.1:{held}",
           "defaults": {"interval": "500ms", "timeout": "300ms", "failure_threshold": 1,
                        "success_threshold": 1},
           "checks": [{"name": "fromfile", "url": app.url}]}
    path = write_config(doc)
    try:
        # --config file, and --listen wins over the file's listen (which is held by us).
        ha = ctx.healthagg(["--config", path], listen="127.0.0.1:0")
        expect(ha.port != held, "--listen should win over the config file's listen")
        expect_eq([c.get("name") for c in ha.startup["checks"]], ["fromfile"],
                  "check names from --config")
        ha.wait_transition("fromfile", "pass", 3)
        # HEALTHAGG_CONFIG_FILE
        ha2 = ctx.healthagg([], env={"HEALTHAGG_CONFIG_FILE": path}, listen="127.0.0.1:0")
        expect_eq([c.get("name") for c in ha2.startup["checks"]], ["fromfile"],
                  "check names from HEALTHAGG_CONFIG_FILE")
    finally:
        os.unlink(path)
    # HEALTHAGG_LISTEN drives serve's listen address when there is no flag.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
    s.close()
    inline = json.dumps({"checks": [{"name": "inline", "url": app.url}]})
    ha3 = ctx.healthagg([], env={"HEALTHAGG_CONFIG": inline,
                                 "HEALTHAGG_LISTEN": f"127.0.0.1:{free}"}, listen=None)
    expect_eq(ha3.port, free, "listen port from HEALTHAGG_LISTEN")
    expect_eq([c.get("name") for c in ha3.startup["checks"]], ["inline"],
              "check names from HEALTHAGG_CONFIG")
    # The --listen flag wins over HEALTHAGG_LISTEN (which points at a held port).
    ha4 = ctx.healthagg([], env={"HEALTHAGG_CONFIG": inline,
                                 "HEALTHAGG_LISTEN": f"127.0.0.1:{held}"}, listen="127.0.0.1:0")
    expect(ha4.port != held, "--listen should win over HEALTHAGG_LISTEN")


@test
def flags_win_over_config_durations(ctx):
    app = ctx.testapp(mode="status:503")
    inline = json.dumps({"defaults": {"interval": "30s", "timeout": "5s",
                                      "failure_threshold": 10},
                         "checks": [{"name": "app", "url": app.url}]})
    ha = ctx.healthagg(["--interval", "500ms", "--timeout", "300ms", "--failure-threshold", "1",
                        "--start-period", "0s"], env={"HEALTHAGG_CONFIG": inline})
    # With the config's 30s interval and 10 failures this would take minutes.
    t = ha.wait_transition("app", "fail", 3)
    expect_eq(t["consecutive_failures"], 1, "consecutive_failures with --failure-threshold 1")


run(__name__)
