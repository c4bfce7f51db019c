"""The one-shot commands: `probe` (exit 0/1, never 2; one stdout line; silent stderr on success;
URL from --url or HEALTHAGG_LISTEN), `check URL...` (http and tcp, up and down), version/help."""
import socket

from harness import *  # noqa: F401,F403


def healthy(ctx):
    app = ctx.testapp()
    ha = ctx.healthagg(serve_args(f"app={app.url}"))
    ha.wait_transition("app", "pass", 3)
    return app, ha


def one_line(r, prefix, what):
    expect(len(lines_of(r.out)) == 1 and r.out.startswith(prefix),
           f"{what}: expected one stdout line starting {prefix!r}, saw {r}")


@test
def probe_healthy_and_unhealthy(ctx):
    app, ha = healthy(ctx)
    r = probe(ha)
    expect_eq((r.rc, r.out, r.err), (0, "healthy\n", ""), "probe of a healthy sidecar")
    mark = ha.mark()
    app.set_mode("status:503")
    ha.wait_transition("app", "fail", 4, start=mark)
    r = probe(ha)
    expect_eq(r.rc, 1, f"probe exit status when the app answers 503 ({r})")
    expect_eq(lines_of(r.out), ["unhealthy: app: HTTP 503"], "probe stdout")


@test
def probe_no_sidecar_is_fast_and_clear(ctx):
    port = ctx.dead_port()
    r = cli(["probe", "--url", f"http://127.0.0.1:{port}/readyz"])
    expect_eq(r.rc, 1, f"probe exit status with no sidecar ({r})")
    expect(r.elapsed < 1.5, f"probe with no sidecar took {r.elapsed:.2f}s, expected < 1.5s")
    one_line(r, f"unhealthy: no sidecar listening on 127.0.0.1:{port}", "probe with no sidecar")
    expect_eq(r.err, "", "probe stderr with no sidecar")


@test
def probe_url_from_healthagg_listen(ctx):
    app, ha = healthy(ctx)
    for listen in (f"127.0.0.1:{ha.port}", f"0.0.0.0:{ha.port}"):
        r = cli(["probe"], env={"HEALTHAGG_LISTEN": listen})
        expect_eq((r.rc, r.out, r.err), (0, "healthy\n", ""),
                  f"probe with HEALTHAGG_LISTEN={listen} and a healthy sidecar on {ha.port}")
    port = ctx.dead_port()
    r = cli(["probe"], env={"HEALTHAGG_LISTEN": f"0.0.0.0:{port}"})
    expect_eq(r.rc, 1, f"probe with HEALTHAGG_LISTEN on a dead port ({r})")
    one_line(r, f"unhealthy: no sidecar listening on 127.0.0.1:{port}",
             "probe with HEALTHAGG_LISTEN on a dead port")


@test
def probe_default_url_is_8099(ctx):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 8099))  # held, not listening: nobody answers on 8099 meanwhile
    except OSError:
        print("  (skipped: 127.0.0.1:8099 is in use on this machine)")
        return
    ctx.sockets.append(s)
    r = cli(["probe"])
    expect_eq(r.rc, 1, f"probe with no sidecar on the default port ({r})")
    one_line(r, "unhealthy: no sidecar listening on 127.0.0.1:8099", "probe, default URL")


@test
def probe_bounded_by_timeout_on_a_hanging_sidecar(ctx):
    fake = ctx.testapp(mode="hang")
    r = cli(["probe", "--url", f"http://127.0.0.1:{fake.port}/readyz", "--timeout", "500ms"])
    expect_eq(r.rc, 1, f"probe of a sidecar that never answers ({r})")
    expect(r.elapsed < 1.5, f"probe --timeout 500ms took {r.elapsed:.2f}s")
    one_line(r, "unhealthy: ", "probe of a hanging sidecar")


@test
def probe_never_exits_2(ctx):
    for args in (["probe", "--url", "not a url"], ["probe", "--bogus-flag"],
                 ["probe", "--timeout", "soon"]):
        r = cli(args)
        expect_eq(r.rc, 1, f"`healthagg {' '.join(args)}` must exit 1, never 2 ({r})")


@test
def check_up_and_down_targets(ctx):
    app = ctx.testapp()
    down = ctx.dead_port()
    up_http, up_tcp = app.url, f"tcp://127.0.0.1:{app.port}"
    dn_http, dn_tcp = f"http://127.0.0.1:{down}/", f"tcp://127.0.0.1:{down}"

    r = cli(["check", up_http, up_tcp])
    expect_eq(r.rc, 0, f"check of two up targets ({r})")
    out = lines_of(r.out)
    expect(len(out) == 2 and all(l.startswith("pass ") for l in out),
           f"check of two up targets: expected two 'pass ' lines, saw {r}")
    expect_eq(r.err, "", "check stderr when all pass")

    r = cli(["check", dn_http, dn_tcp])
    expect_eq(r.rc, 1, f"check of two down targets ({r})")
    out = lines_of(r.out)
    expect(len(out) == 2 and all(l.startswith("fail ") and "connection refused" in l
                                 for l in out),
           f"check of two down targets: expected two 'fail ...connection refused' lines, saw {r}")

    r = cli(["check", up_http, dn_tcp])
    expect_eq(r.rc, 1, f"check of one up and one down target ({r})")
    out = lines_of(r.out)
    expect(len(out) == 2 and out[0].startswith("pass ") and out[1].startswith("fail "),
           f"check up+down: expected 'pass ' then 'fail ', saw {r}")

    app.set_mode("status:503")
    r = cli(["check", up_http])
    expect(r.rc == 1 and r.out.startswith("fail ") and "HTTP 503" in r.out,
           f"check of an app answering 503: expected exit 1, 'fail ... HTTP 503', saw {r}")


@test
def version_and_help_exit_0(ctx):
    for args in (["version"], ["--help"]):
        r = cli(args)
        expect(r.rc == 0 and r.out.strip(), f"`healthagg {' '.join(args)}`: expected exit 0 with "
               f"output, saw {r}")


run(__name__)
