#!/usr/bin/python3
"""Offline checks of healthagg's deployment recipes (deploy/).

  deploy_check.py taskdef FILE...     ECS task definitions: JSON (RegisterTaskDefinition input),
                                      CloudFormation YAML (AWS::ECS::TaskDefinition resources),
                                      Terraform (aws_ecs_task_definition resources)
  deploy_check.py compose FILE        `docker-compose -f FILE config`, then the same rules
  deploy_check.py dockerfile FILE...  the final stage: FROM scratch, non-root, exec-form checks
  deploy_check.py agree FILE FILE...  the recipes describe the same task (references aside)
  deploy_check.py configs HEALTHAGG FILE...
                                      every HEALTHAGG_CONFIG passes `HEALTHAGG validate`
  deploy_check.py self-test GOOD.json GOOD.yaml GOOD.tf
                                      the checker must reject deliberately broken copies

Each task definition goes through two layers:
  1. the ECS API model shipped in Debian's python3-botocore: botocore.validate.ParamValidator on
     RegisterTaskDefinition's input shape (names, types, required members). No credentials, no
     network: the model is a data file of the package.
  2. rules the model does not enforce, about health checks and start order (see RULES below).

Run it with /usr/bin/python3 (the interpreter that has Debian's python3-botocore and python3-yaml);
tests/deploy/deps.sh installs them. A missing module is an error, never a silent pass.
Exit status: 0 when everything passed, 1 when something was rejected, 2 on usage or setup errors.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SETUP_HINT = ("run tests/deploy/deps.sh (as root; the project's setup script does) to install "
              "python3-botocore, python3-yaml and docker-compose")


def need_module(name, package):
    try:
        return __import__(name)
    except ImportError:
        sys.stderr.write("deploy_check: Python module '%s' is missing (Debian package %s) in %s: "
                         "%s\n" % (name, package, sys.executable, SETUP_HINT))
        sys.exit(2)


# ------------------------------------------------------------------------------------------------
# Rules (ECS facts; see deploy/README.md)
# ------------------------------------------------------------------------------------------------
HC_DEFAULTS = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
HC_RANGES = {"interval": (5, 300), "timeout": (2, 60), "retries": (1, 10), "startPeriod": (0, 300)}
CONDITIONS = {"START", "COMPLETE", "SUCCESS", "HEALTHY"}
# Images known to have no /bin/sh: ours, ko's defaults, distroless, chainguard static, scratch.
SHELL_LESS_IMAGE = re.compile(r"healthagg|distroless|chainguard|(^|[/:_-])static([/:_@-]|$)|"
                              r"(^|/)scratch(:|$)|^ko\.local/|^ko://", re.I)
SHELL_LABEL = "healthagg.shell"   # dockerLabels: "/bin/sh" declares a shell, "none" its absence
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"}
CONFIG_KEYS = {"listen", "defaults", "checks", "enforce", "history_size",
               "still_unhealthy_interval"}
DEFAULTS_KEYS = {"interval", "timeout", "failure_threshold", "success_threshold", "start_period",
                 "start_interval", "groups"}
CHECK_KEYS = DEFAULTS_KEYS | {"name", "url", "expect_status", "expect_body", "critical",
                              "headers", "method", "service", "metadata", "authority",
                              "container", "send", "send_hex", "expect", "expect_hex", "max_age",
                              "max_response_bytes"}
# Fargate task sizes: cpu units -> allowed memory (MiB).
FARGATE_SIZES = {
    "256": [512, 1024, 2048],
    "512": list(range(1024, 4097, 1024)),
    "1024": list(range(2048, 8193, 1024)),
    "2048": list(range(4096, 16385, 1024)),
    "4096": list(range(8192, 30721, 1024)),
    "8192": list(range(16384, 61441, 4096)),
    "16384": list(range(32768, 122881, 8192)),
}
RULES = """\
  - Fargate: networkMode awsvpc, a valid cpu/memory pair
  - container names unique; dependsOn names an existing other container, a known condition, no
    cycle; HEALTHY only on a container that has a healthCheck
  - healthCheck: interval 5-300 s, timeout 2-60 s and < interval, retries 1-10, startPeriod 0-300
  - healthCheck command: ["CMD", "/abs/path", ...] or ["CMD-SHELL", "..."]; CMD-SHELL only on an
    image with a shell (never on a shell-less image; on others it needs dockerLabels
    {"healthagg.shell": "/bin/sh"}); the exec form's program is an absolute path (scratch images
    have no PATH to search)
  - the healthagg sidecar: essential, health-checked with ["CMD", "/healthagg", "probe", ...]
    (with `--group G`, only the checks in G decide its health, and G must exist),
    HEALTHAGG_CONFIG (if set) is valid JSON with known keys, its startPeriod covers the
    sidecar's own start_period
  - no container that healthagg probes waits (directly or through others) for healthagg HEALTHY:
    that is a deadlock, the sidecar turns healthy only once the app answers
"""


def parse_duration(text):
    """'250ms', '5s', '2m', '1h' -> seconds (float); None if malformed."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*", str(text))
    if not m:
        return None
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def as_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


class Findings:
    def __init__(self):
        self.errors = []

    def add(self, where, msg):
        self.errors.append("%s: %s" % (where, msg))


def is_healthagg(c):
    cmd = (c.get("healthCheck") or {}).get("command") or []
    if any(isinstance(a, str) and a.rstrip("/").endswith("healthagg") for a in cmd[1:2]):
        return True
    return c.get("name") == "healthagg" or "healthagg" in str(c.get("image", "")).lower()


def image_has_no_shell(c):
    label = (c.get("dockerLabels") or {}).get(SHELL_LABEL)
    return label == "none" or bool(SHELL_LESS_IMAGE.search(str(c.get("image", ""))))


def check_health_check(f, where, c, hc):
    values = {k: hc.get(k, HC_DEFAULTS[k]) for k in HC_DEFAULTS}
    for k, (lo, hi) in HC_RANGES.items():
        v = as_int(values[k])
        if v is None:
            f.add(where, "healthCheck.%s: %r is not an integer" % (k, values[k]))
            values[k] = None
        elif not lo <= v <= hi:
            f.add(where, "healthCheck.%s: %d is outside ECS's range %d-%d" % (k, v, lo, hi))
        else:
            values[k] = v
    if values["interval"] is not None and values["timeout"] is not None and \
            values["timeout"] >= values["interval"]:
        f.add(where, "healthCheck.timeout (%d) must be shorter than the interval (%d)"
              % (values["timeout"], values["interval"]))
    cmd = hc.get("command")
    if not isinstance(cmd, list) or not cmd or not all(isinstance(a, str) for a in cmd):
        f.add(where, "healthCheck.command must be a non-empty list of strings")
        return values
    kind = cmd[0]
    if kind == "CMD-SHELL":
        label = (c.get("dockerLabels") or {}).get(SHELL_LABEL)
        if image_has_no_shell(c):
            f.add(where, "healthCheck uses CMD-SHELL but image %r has no shell: the check can "
                  "never run and the task restarts forever; use the exec form "
                  "[\"CMD\", \"/healthagg\", \"probe\"]" % c.get("image"))
        elif not (isinstance(label, str) and label.startswith("/")):
            f.add(where, "healthCheck uses CMD-SHELL on image %r, not known to have a shell: use "
                  "the exec form, or declare the shell with dockerLabels {\"%s\": \"/bin/sh\"}"
                  % (c.get("image"), SHELL_LABEL))
        if len(cmd) != 2:
            f.add(where, "CMD-SHELL takes exactly one string (the shell command)")
    elif kind == "CMD":
        if len(cmd) < 2:
            f.add(where, "healthCheck [\"CMD\"] names no program")
        elif not cmd[1].startswith("/"):
            f.add(where, "healthCheck program %r is not an absolute path (a scratch image has no "
                  "PATH to search)" % cmd[1])
    elif kind == "NONE":
        f.add(where, "healthCheck [\"NONE\"]: leave healthCheck out instead")
    else:
        f.add(where, "healthCheck.command[0] must be \"CMD\" or \"CMD-SHELL\", not %r" % kind)
    return values


def probe_group(cmd):
    """The group a `probe` health check gates on (`--group G` / `--group=G`), or None."""
    for i, a in enumerate(cmd or []):
        if a == "--group" and i + 1 < len(cmd):
            return cmd[i + 1]
        if isinstance(a, str) and a.startswith("--group="):
            return a[len("--group="):]
    return None


def check_healthagg_config(f, where, text, group=None):
    """HEALTHAGG_CONFIG -> (list of (name, url) of its critical checks, start_period seconds or
    None). Non-critical checks are left out: a failing or starting one leaves the sidecar ready
    (warn), so a container it probes may wait for healthagg HEALTHY without a deadlock. With
    `group` (the health check is `probe --group G`), only the checks in that group count: the
    others never decide the sidecar's health, whatever they probe."""
    try:
        cfg = json.loads(text)
    except ValueError as e:
        f.add(where, "HEALTHAGG_CONFIG is not valid JSON: %s" % e)
        return [], None
    if not isinstance(cfg, dict):
        f.add(where, "HEALTHAGG_CONFIG must be a JSON object")
        return [], None
    for k in sorted(set(cfg) - CONFIG_KEYS):
        f.add(where, "HEALTHAGG_CONFIG: unknown key %r" % k)
    defaults = cfg.get("defaults") or {}
    if not isinstance(defaults, dict):
        f.add(where, "HEALTHAGG_CONFIG.defaults must be an object")
        defaults = {}
    for k in sorted(set(defaults) - DEFAULTS_KEYS):
        f.add(where, "HEALTHAGG_CONFIG.defaults: unknown key %r" % k)
    for k in ("interval", "timeout", "start_period"):
        if k in defaults and parse_duration(defaults[k]) is None:
            f.add(where, "HEALTHAGG_CONFIG.defaults.%s: %r is not a duration" % (k, defaults[k]))
    checks = cfg.get("checks")
    if not isinstance(checks, list) or not checks:
        f.add(where, "HEALTHAGG_CONFIG.checks must be a non-empty list")
        checks = []
    out, names = [], set()
    for i, ch in enumerate(checks):
        w = "HEALTHAGG_CONFIG.checks[%d]" % i
        if not isinstance(ch, dict) or not isinstance(ch.get("url"), str):
            f.add(where, "%s needs a \"url\" string" % w)
            continue
        for k in sorted(set(ch) - CHECK_KEYS):
            f.add(where, "%s: unknown key %r" % (w, k))
        name = ch.get("name", ch["url"])
        if name in names:
            f.add(where, "%s: duplicate check name %r" % (w, name))
        names.add(name)
        groups = ch.get("groups", defaults.get("groups", []))
        if group is not None and group not in (groups if isinstance(groups, list) else []):
            continue
        if ch.get("critical", defaults.get("critical", True)) is not False:
            out.append((name, ch["url"]))
    if group is not None and not any(
            isinstance(ch, dict) and group in (ch.get("groups", defaults.get("groups", [])) or [])
            for ch in checks):
        f.add(where, "the healthCheck asks `probe --group %s`, but no check of HEALTHAGG_CONFIG "
              "is in group %r: every probe would fail (404 unknown group)" % (group, group))
    sp = parse_duration(defaults.get("start_period", "0s"))
    sps = [parse_duration(ch.get("start_period")) for ch in checks
           if isinstance(ch, dict) and "start_period" in ch]
    sp = max([sp or 0] + [s for s in sps if s is not None])
    return out, sp


def url_port(url):
    m = re.match(r"^(?:https?|tcp|grpcs?)://(\[[^\]]+\]|[^/:]+)(?::(\d+))?", url)
    if not m:
        return None, None
    host = m.group(1)
    port = int(m.group(2)) if m.group(2) else (443 if url.startswith("https") else 80)
    return host, port


def semantic_check(td, where):
    f = Findings()
    compat = td.get("requiresCompatibilities") or []
    if "FARGATE" in compat:
        if td.get("networkMode") != "awsvpc":
            f.add(where, "Fargate needs networkMode awsvpc, not %r" % td.get("networkMode"))
        cpu, mem = str(td.get("cpu", "")), as_int(td.get("memory"))
        if cpu not in FARGATE_SIZES:
            f.add(where, "Fargate task cpu %r is not one of %s" % (cpu, ", ".join(FARGATE_SIZES)))
        elif mem not in FARGATE_SIZES[cpu]:
            f.add(where, "Fargate task memory %r is not allowed with cpu %s" % (td.get("memory"),
                                                                            cpu))
    containers = td.get("containerDefinitions") or []
    by_name = {}
    for c in containers:
        if c.get("name") in by_name:
            f.add(where, "two containers are named %r" % c.get("name"))
        by_name[c.get("name")] = c
    if not any(c.get("essential", True) for c in containers):
        f.add(where, "no essential container")

    # dependsOn: references, conditions, cycles.
    deps = {}
    for c in containers:
        cw = "%s: container %s" % (where, c.get("name"))
        deps[c.get("name")] = []
        for d in c.get("dependsOn") or []:
            target, cond = d.get("containerName"), d.get("condition")
            if cond not in CONDITIONS:
                f.add(cw, "dependsOn condition %r is not one of %s" % (cond, sorted(CONDITIONS)))
            if target == c.get("name"):
                f.add(cw, "depends on itself")
            elif target not in by_name:
                f.add(cw, "dependsOn names no container of this task: %r" % target)
            else:
                deps[c.get("name")].append((target, cond))
                if cond == "HEALTHY" and not by_name[target].get("healthCheck"):
                    f.add(cw, "waits for %s HEALTHY, but %s has no healthCheck" % (target, target))
    state = {}

    def visit(n, path):
        if state.get(n) == 1:
            f.add(where, "dependsOn cycle: %s" % " -> ".join(path + [n]))
            return
        if state.get(n) == 2:
            return
        state[n] = 1
        for t, _ in deps.get(n, []):
            visit(t, path + [n])
        state[n] = 2
    for n in deps:
        visit(n, [])

    # Health checks.
    hc_values = {}
    for c in containers:
        if c.get("healthCheck") is not None:
            hc_values[c.get("name")] = check_health_check(
                f, "%s: container %s" % (where, c.get("name")), c, c["healthCheck"])

    # The healthagg sidecar.
    sidecars = [c for c in containers if is_healthagg(c)]
    for s in sidecars:
        sw = "%s: container %s" % (where, s.get("name"))
        if not s.get("essential", True):
            f.add(sw, "the healthagg sidecar must be essential: its health check is the task's")
        cmd = (s.get("healthCheck") or {}).get("command")
        if not cmd:
            f.add(sw, "the healthagg sidecar has no healthCheck: ECS would monitor nothing "
                  "(use [\"CMD\", \"/healthagg\", \"probe\"])")
        elif cmd[:1] != ["CMD"] or len(cmd) < 3 or cmd[2] != "probe":
            f.add(sw, "the healthagg sidecar's healthCheck must be [\"CMD\", \"/healthagg\", "
                  "\"probe\", ...], not %r" % (cmd,))
        env = {e.get("name"): e.get("value") for e in s.get("environment") or []}
        checks, start_period = [], None
        if "HEALTHAGG_CONFIG" in env:
            checks, start_period = check_healthagg_config(f, sw, env["HEALTHAGG_CONFIG"] or "",
                                                          probe_group(cmd))
        sv = hc_values.get(s.get("name"))
        if sv and start_period and sv["startPeriod"] is not None and \
                sv["startPeriod"] < start_period:
            f.add(sw, "healthCheck.startPeriod (%ds) is shorter than healthagg's start_period "
                  "(%gs): ECS would count the sidecar's 'starting' answers as failures"
                  % (sv["startPeriod"], start_period))

        # Which containers does it probe? In awsvpc every container shares localhost: the one
        # whose portMappings hold the check's port.
        probed = {}
        for name, url in checks:
            host, port = url_port(url)
            if port is None:
                continue
            for c in containers:
                if c is s:
                    continue
                ports = {as_int(p.get("containerPort")) for p in c.get("portMappings") or []}
                if port in ports and (host in LOOPBACK or td.get("networkMode") == "awsvpc"):
                    probed.setdefault(c.get("name"), []).append(name)

        # Containers that wait, directly or through others, for the sidecar to be HEALTHY.
        waits = {}

        def wait_path(n, seen):
            if n in waits:
                return waits[n]
            waits[n] = None
            for t, cond in deps.get(n, []):
                if t == s.get("name") and cond == "HEALTHY":
                    waits[n] = [n, t]
                    break
                if t not in seen:
                    sub = wait_path(t, seen | {t})
                    if sub:
                        waits[n] = [n] + sub
                        break
            return waits[n]
        for n, check_names in sorted(probed.items()):
            p = wait_path(n, {n})
            if p:
                f.add("%s: container %s" % (where, n),
                      "deadlock: healthagg probes it (check %s) but it waits for %s HEALTHY "
                      "(%s); the sidecar turns healthy only once it answers: use condition "
                      "START" % (", ".join(check_names), s.get("name"), " -> ".join(p)))
    return f.errors


# ------------------------------------------------------------------------------------------------
# The ECS API model (botocore)
# ------------------------------------------------------------------------------------------------
_INPUT_SHAPE = None


def input_shape():
    global _INPUT_SHAPE
    if _INPUT_SHAPE is None:
        need_module("botocore", "python3-botocore")
        import botocore.session
        # No profile, no credentials, no network: only the service model data file is read.
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(var, None)
        os.environ["AWS_CONFIG_FILE"] = os.devnull
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        session = botocore.session.get_session()
        model = session.get_service_model("ecs")
        _INPUT_SHAPE = model.operation_model("RegisterTaskDefinition").input_shape
    return _INPUT_SHAPE


def model_check(td, where):
    shape = input_shape()
    from botocore.validate import ParamValidator
    report = ParamValidator().validate(td, shape)
    if not report.has_errors():
        return []
    return ["%s: ECS API model: %s" % (where, line.strip())
            for line in report.generate_report().splitlines() if line.strip()]


def coerce_to_shape(value, shape):
    """CloudFormation turns "10" into 10 where the API wants a number: do the same."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        return {k: (coerce_to_shape(v, shape.members[k]) if k in shape.members else v)
                for k, v in value.items()}
    if t == "list" and isinstance(value, list):
        return [coerce_to_shape(v, shape.member) for v in value]
    if t == "map" and isinstance(value, dict):
        return {k: coerce_to_shape(v, shape.value) for k, v in value.items()}
    if t == "integer" and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if t == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if t == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


# ------------------------------------------------------------------------------------------------
# Loaders: each returns a list of (label, RegisterTaskDefinition parameters)
# ------------------------------------------------------------------------------------------------
def load_json(path):
    with open(path) as fh:
        doc = json.load(fh)
    docs = doc if isinstance(doc, list) else [doc]
    return [("%s[%d]" % (path, i) if len(docs) > 1 else path, d) for i, d in enumerate(docs)]


# CloudFormation property names that are not the API's name with a lower-case first letter.
CFN_NAME_EXCEPTIONS = {
    "EFSVolumeConfiguration": "efsVolumeConfiguration",
    "FSxWindowsFileServerVolumeConfiguration": "fsxWindowsFileServerVolumeConfiguration",
    "ProxyConfigurationProperties": "properties",
    "IAM": "iam",
}
# Properties whose values are maps with user-chosen keys: keys kept as they are.
CFN_FREE_MAPS = {"Options", "DockerLabels", "DriverOpts", "Labels", "SystemControls"}
CFN_PSEUDO = {"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012",
              "AWS::Partition": "aws", "AWS::StackName": "stack", "AWS::URLSuffix": "amazonaws.com",
              "AWS::NoValue": None, "AWS::StackId": "arn:aws:cloudformation:stack"}


class CfnTag:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def cfn_yaml_load(text):
    yaml = need_module("yaml", "python3-yaml")

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            v = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            v = loader.construct_sequence(node, deep=True)
        else:
            v = loader.construct_mapping(node, deep=True)
        return CfnTag(suffix, v)
    Loader.add_multi_constructor("!", construct)
    return yaml.load(text, Loader=Loader)


def cfn_resolve(v, params, resources):
    """Evaluate the intrinsic functions a task definition typically uses, with placeholders."""
    def ref(name):
        if name in CFN_PSEUDO:
            return CFN_PSEUDO[name]
        if name in params:
            return params[name].get("Default", "param-" + name)
        if name in resources:
            return name + "-ref"
        raise ValueError("!Ref to unknown name %r" % name)

    def getatt(arg):
        parts = arg.split(".", 1) if isinstance(arg, str) else list(arg)
        if parts[0] not in resources:
            raise ValueError("!GetAtt of unknown resource %r" % parts[0])
        return "arn:aws:placeholder:%s" % ".".join(parts)

    def sub(arg):
        tmpl, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def rep(m):
            name = m.group(1)
            if name in extra:
                return str(cfn_resolve(extra[name], params, resources))
            if "." in name and name.split(".")[0] in resources:
                return getatt(name)
            return str(ref(name))
        return re.sub(r"\$\{([^}!]+)\}", rep, tmpl)

    if isinstance(v, CfnTag) or (isinstance(v, dict) and len(v) == 1 and
                                 (next(iter(v)) == "Ref" or next(iter(v)).startswith("Fn::"))):
        if isinstance(v, CfnTag):
            fn, arg = v.tag, v.value
        else:
            (fn, arg), = v.items()
            fn = fn.replace("Fn::", "")
        if fn not in ("Ref", "Sub"):
            arg = cfn_resolve(arg, params, resources)
        if fn == "Ref":
            return ref(arg)
        if fn == "Sub":
            return sub(arg)
        if fn == "GetAtt":
            return getatt(arg)
        if fn == "Join":
            return str(arg[0]).join(str(x) for x in arg[1])
        if fn == "Select":
            return arg[1][int(arg[0])]
        if fn == "If":
            return arg[1]
        if fn == "Split":
            return str(arg[1]).split(arg[0])
        return "%s-placeholder" % fn
    if isinstance(v, dict):
        return {k: cfn_resolve(x, params, resources) for k, x in v.items()}
    if isinstance(v, list):
        return [cfn_resolve(x, params, resources) for x in v]
    return v


def cfn_to_api(v, free=False):
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if x is None:        # AWS::NoValue
                continue
            name = k if free else CFN_NAME_EXCEPTIONS.get(k, k[:1].lower() + k[1:])
            out[name] = cfn_to_api(x, free=(not free and k in CFN_FREE_MAPS))
        return out
    if isinstance(v, list):
        return [cfn_to_api(x) for x in v]
    return v


def load_cfn(path):
    with open(path) as fh:
        doc = cfn_yaml_load(fh.read())
    params = doc.get("Parameters") or {}
    resources = doc.get("Resources") or {}
    out = []
    for name, res in resources.items():
        if isinstance(res, dict) and res.get("Type") == "AWS::ECS::TaskDefinition":
            props = cfn_resolve(res.get("Properties") or {}, params, resources)
            td = coerce_to_shape(cfn_to_api(props), input_shape())
            out.append(("%s: Resources.%s" % (path, name), td))
    return out


# --- Terraform: a small HCL reader for the subset task definitions use -------------------------
class HclError(ValueError):
    pass


class Ref:
    """An unevaluated traversal such as var.x, local.y, data.aws_region.current.name."""
    def __init__(self, parts):
        self.parts = parts


class Call:
    def __init__(self, name, args):
        self.name, self.args = name, args


class Tmpl:
    """A string with ${...} interpolations: a list of str and expressions."""
    def __init__(self, pieces):
        self.pieces = pieces


HCL_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r]+|\\\n)
  | (?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<nl>\n)
  | (?P<heredoc><<-?(?P<tag>[A-Za-z_]+)\n)
  | (?P<string>")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
  | (?P<punct>[{}\[\]().,=:?])
""", re.X | re.S)


class HclParser:
    def __init__(self, text):
        self.text, self.pos = text, 0
        self.toks = []
        self._lex()
        self.i = 0

    def _string(self, end_quote=True):
        """Read a quoted string body from self.pos; returns a Tmpl or str."""
        pieces, buf, t = [], [], self.text
        while True:
            if self.pos >= len(t):
                raise HclError("unterminated string")
            ch = t[self.pos]
            if ch == '"':
                self.pos += 1
                break
            if ch == "\\":
                esc = t[self.pos + 1]
                buf.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}.get(esc, esc))
                self.pos += 2
                continue
            if t.startswith("$${", self.pos):
                buf.append("${")
                self.pos += 3
                continue
            if t.startswith("${", self.pos):
                depth, j = 1, self.pos + 2
                while depth:
                    if j >= len(t):
                        raise HclError("unterminated interpolation")
                    depth += {"{": 1, "}": -1}.get(t[j], 0)
                    j += 1
                if buf:
                    pieces.append("".join(buf))
                    buf = []
                pieces.append(HclParser(t[self.pos + 2:j - 1]).expr_only())
                self.pos = j
                continue
            buf.append(ch)
            self.pos += 1
        if buf:
            pieces.append("".join(buf))
        if all(isinstance(p, str) for p in pieces):
            return "".join(pieces)
        return Tmpl(pieces)

    def _lex(self):
        t = self.text
        while self.pos < len(t):
            m = HCL_TOKEN.match(t, self.pos)
            if not m:
                line = t.count("\n", 0, self.pos) + 1
                raise HclError("line %d: unexpected %r" % (line, t[self.pos:self.pos + 20]))
            self.pos = m.end()
            kind = m.lastgroup if m.lastgroup != "tag" else "heredoc"
            if kind in ("ws", "comment"):
                continue
            if kind == "string":
                self.toks.append(("str", self._string()))
            elif kind == "heredoc":
                tag = m.group("tag")
                end = re.compile(r"^[ \t]*%s[ \t]*$" % re.escape(tag), re.M).search(t, self.pos)
                if not end:
                    raise HclError("unterminated heredoc %s" % tag)
                body = t[self.pos:end.start()]
                if m.group("heredoc").startswith("<<-"):
                    lines = body.split("\n")
                    ind = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
                    body = "\n".join(x[ind:] for x in lines)
                self.toks.append(("str", body))
                self.pos = end.end()
            elif kind == "number":
                v = m.group(kind)
                self.toks.append(("num", float(v) if re.search(r"[.eE]", v) else int(v)))
            else:
                self.toks.append((kind, m.group(kind)))
        self.toks.append(("eof", None))

    def peek(self, skip_nl=True):
        j = self.i
        while skip_nl and self.toks[j][0] == "nl":
            j += 1
        return self.toks[j]

    def take(self, skip_nl=True):
        while skip_nl and self.toks[self.i][0] == "nl":
            self.i += 1
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, kind, value=None):
        tok = self.take()
        if tok[0] != kind or (value is not None and tok[1] != value):
            raise HclError("expected %s %s, got %r" % (kind, value or "", tok))
        return tok

    def body(self, end="eof"):
        """Attributes and blocks until `end`: returns (attrs dict, blocks list)."""
        attrs, blocks = {}, []
        while True:
            tok = self.peek()
            if tok[0] == "eof" and end == "eof":
                self.take()
                return attrs, blocks
            if tok == ("punct", "}") and end == "}":
                self.take()
                return attrs, blocks
            name = self.take()
            if name[0] not in ("ident", "str"):
                raise HclError("expected an attribute or block, got %r" % (name,))
            nxt = self.peek(skip_nl=False)
            if nxt == ("punct", "="):
                self.take()
                attrs[name[1]] = self.expr()
                continue
            labels = []
            while self.peek()[0] in ("str", "ident"):
                labels.append(self.take()[1])
            self.expect("punct", "{")
            a, b = self.body("}")
            blocks.append((name[1], labels, a, b))

    def expr_only(self):
        e = self.expr()
        if self.peek()[0] != "eof":
            raise HclError("unexpected %r after expression" % (self.peek(),))
        return e

    def expr(self):
        tok = self.take()
        kind, val = tok
        if kind in ("str", "num"):
            return val
        if kind == "punct" and val == "[":
            items = []
            while self.peek() != ("punct", "]"):
                items.append(self.expr())
                if self.peek() == ("punct", ","):
                    self.take()
            self.take()
            return items
        if kind == "punct" and val == "{":
            obj = {}
            while self.peek() != ("punct", "}"):
                k = self.take()
                if k[0] == "punct" and k[1] == "(":
                    key = self.expr()
                    self.expect("punct", ")")
                elif k[0] in ("ident", "str"):
                    key = k[1]
                else:
                    raise HclError("bad object key %r" % (k,))
                sep = self.take()
                if sep not in (("punct", "="), ("punct", ":")):
                    raise HclError("expected = or : after key %r" % key)
                obj[key] = self.expr()
                if self.peek() == ("punct", ","):
                    self.take()
            self.take()
            return obj
        if kind == "punct" and val == "(":
            e = self.expr()
            self.expect("punct", ")")
            return e
        if kind == "ident":
            if val in ("true", "false"):
                return val == "true"
            if val == "null":
                return None
            if self.peek(skip_nl=False) == ("punct", "("):
                self.take()
                args = []
                while self.peek() != ("punct", ")"):
                    args.append(self.expr())
                    if self.peek() == ("punct", ","):
                        self.take()
                self.take()
                return Call(val, args)
            parts = [val]
            while True:
                nxt = self.peek(skip_nl=False)
                if nxt == ("punct", "."):
                    self.take()
                    parts.append(str(self.take()[1]))
                elif nxt == ("punct", "["):
                    self.take()
                    parts.append(self.expr())
                    self.expect("punct", "]")
                else:
                    break
            return Ref(parts)
        raise HclError("unexpected %r in an expression" % (tok,))


class HclEval:
    def __init__(self, attrs, blocks):
        self.vars, self.locals_src, self.locals = {}, {}, {}
        for kind, labels, a, _ in blocks:
            if kind == "variable":
                self.vars[labels[0]] = a.get("default", "var-" + labels[0])
            elif kind == "locals":
                self.locals_src.update(a)

    def ev(self, e):
        if isinstance(e, dict):
            return {k: self.ev(v) for k, v in e.items()}
        if isinstance(e, list):
            return [self.ev(v) for v in e]
        if isinstance(e, Tmpl):
            return "".join(p if isinstance(p, str) else str(self.ev(p)) for p in e.pieces)
        if isinstance(e, Call):
            args = [self.ev(a) for a in e.args]
            if e.name == "jsonencode":
                return json.dumps(args[0], separators=(",", ":"))
            if e.name == "merge":
                out = {}
                for a in args:
                    out.update(a)
                return out
            if e.name == "tostring":
                return str(args[0])
            if e.name == "concat":
                return [x for a in args for x in a]
            if e.name == "format":
                return args[0] % tuple(args[1:])
            raise HclError("function %s() is not supported by this checker" % e.name)
        if isinstance(e, Ref):
            head = e.parts[0]
            if head == "var":
                if e.parts[1] not in self.vars:
                    raise HclError("undeclared variable var.%s" % e.parts[1])
                return self.ev(self.vars[e.parts[1]])
            if head == "local":
                name = e.parts[1]
                if name not in self.locals:
                    if name not in self.locals_src:
                        raise HclError("undeclared local.%s" % name)
                    self.locals[name] = self.ev(self.locals_src[name])
                v = self.locals[name]
                for p in e.parts[2:]:
                    v = v[p]
                return v
            return "tfref-" + ".".join(str(p) for p in e.parts)
        return e


def snake_to_camel(s):
    head, *rest = s.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def load_tf(path):
    with open(path) as fh:
        attrs, blocks = HclParser(fh.read()).body()
    ev = HclEval(attrs, blocks)
    out = []
    for kind, labels, a, sub in blocks:
        if kind != "resource" or labels[:1] != ["aws_ecs_task_definition"]:
            continue
        td = {}
        for k, v in a.items():
            v = ev.ev(v)
            if k == "container_definitions":
                td["containerDefinitions"] = json.loads(v)
            elif k == "tags":
                td["tags"] = [{"key": tk, "value": tv} for tk, tv in v.items()]
            else:
                td[snake_to_camel(k)] = v
        for bkind, _, battrs, _ in sub:
            item = {snake_to_camel(k): ev.ev(v) for k, v in battrs.items()}
            if bkind in ("runtime_platform", "ephemeral_storage", "proxy_configuration"):
                td[snake_to_camel(bkind)] = item
            elif bkind in ("volume", "placement_constraints", "inference_accelerator"):
                key = {"volume": "volumes", "inference_accelerator": "inferenceAccelerators"}.get(
                    bkind, "placementConstraints")
                td.setdefault(key, []).append(item)
            else:
                raise HclError("block %s in aws_ecs_task_definition is not supported by this "
                               "checker" % bkind)
        out.append(("%s: aws_ecs_task_definition.%s" % (path, labels[1]), td))
    return out


def load_any(path):
    if path.endswith(".json"):
        return load_json(path)
    if path.endswith((".yaml", ".yml", ".template")):
        return load_cfn(path)
    if path.endswith(".tf"):
        return load_tf(path)
    raise ValueError("%s: unknown kind of file (expected .json, .yaml or .tf)" % path)


def check_taskdef_files(paths, quiet=False):
    errors, count = [], 0
    for path in paths:
        try:
            tds = load_any(path)
        except Exception as e:  # noqa: BLE001 - any unreadable recipe is a finding, not a crash
            errors.append("%s: cannot read: %s: %s" % (path, type(e).__name__, e))
            continue
        if not tds:
            errors.append("%s: no task definition found" % path)
        for where, td in tds:
            count += 1
            errs = model_check(td, where) + semantic_check(td, where)
            errors += errs
            if not quiet:
                print("%s: %s (%d containers)" % ("FAIL" if errs else "ok", where,
                                                  len(td.get("containerDefinitions") or [])))
    return errors, count


def _flatten(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _flatten(v, "%s.%s" % (path, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _flatten(v, "%s[%d]" % (path, i))
    else:
        yield path, x


def _placeholder(v):
    """Values a loader made up for a reference it cannot evaluate (a log group, the region)."""
    return isinstance(v, str) and (v.endswith("-ref") or v.startswith(("tfref-", "param-")) or
                                   v.startswith("arn:aws:placeholder:"))


def agree_check(paths):
    """The recipes must describe the same task: every field equal, except values that are
    references (the log group, the region) in one of them."""
    tds = []
    for p in paths:
        found = load_any(p)
        if len(found) != 1:
            return ["%s: expected exactly one task definition, found %d" % (p, len(found))]
        tds.append((found[0][0], dict(_flatten(found[0][1]))))
    (ref_where, ref), errors = tds[0], []
    for where, flat in tds[1:]:
        for key in sorted(set(ref) | set(flat)):
            a, b = ref.get(key, "<absent>"), flat.get(key, "<absent>")
            if a != b and not (_placeholder(a) or _placeholder(b)):
                errors.append("%s differs from %s at %s: %r vs %r" % (where, ref_where, key, b, a))
        if not errors:
            print("ok: %s describes the same task as %s" % (where, ref_where))
    return errors


def configs_check(binary, paths):
    """Every HEALTHAGG_CONFIG in the recipes passes `healthagg validate` of the real binary."""
    errors, count = [], 0
    for path in paths:
        if path.endswith(("compose.yaml", "compose.yml")):
            doc, errs = compose_config(path)
            errors += errs
            envs = [("%s: service %s" % (path, n), (svc.get("environment") or {}))
                    for n, svc in ((doc or {}).get("services") or {}).items()]
        else:
            # ECS puts each `secrets` entry into the environment too: a stand-in value here, so
            # a ${VAR} naming a secret validates as it would in the task.
            envs = [("%s: container %s" % (where, c.get("name")),
                     dict({e.get("name"): "(secret)" for e in c.get("secrets") or []},
                          **{e.get("name"): e.get("value") for e in c.get("environment") or []}))
                    for where, td in load_any(path) for c in td.get("containerDefinitions") or []]
        for where, env in envs:
            if not isinstance(env, dict) or "HEALTHAGG_CONFIG" not in env:
                continue
            count += 1
            clean = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHAGG_")}
            clean.update({k: v for k, v in env.items() if k != "HEALTHAGG_CONFIG" and
                          isinstance(k, str) and isinstance(v, str)})
            clean["HEALTHAGG_CONFIG"] = env["HEALTHAGG_CONFIG"]
            p = subprocess.run([binary, "validate"], env=clean, capture_output=True, text=True,
                               timeout=30)
            out = (p.stdout + p.stderr).strip()
            if p.returncode != 0:
                errors.append("%s: healthagg validate exit %d: %s" % (where, p.returncode, out))
            else:
                print("ok: %s: %s" % (where, out.splitlines()[0] if out else "valid"))
    if not count:
        errors.append("no HEALTHAGG_CONFIG found in %s" % ", ".join(paths))
    return errors


# ------------------------------------------------------------------------------------------------
# docker-compose
# ------------------------------------------------------------------------------------------------
def compose_config(path):
    exe = shutil.which("docker-compose")
    if not exe:
        sys.stderr.write("deploy_check: docker-compose not found: %s\n" % SETUP_HINT)
        sys.exit(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    p = subprocess.run([exe, "-f", path, "config"], capture_output=True, text=True, env=env,
                       timeout=120)
    if p.returncode != 0:
        return None, ["%s: docker-compose config failed (exit %d): %s"
                      % (path, p.returncode, (p.stderr or p.stdout).strip())]
    yaml = need_module("yaml", "python3-yaml")
    return yaml.safe_load(p.stdout), []


def compose_check(path, quiet=False):
    doc, errors = compose_config(path)
    if doc is None:
        return errors
    f = Findings()
    services = doc.get("services") or {}

    def secs(v, default):
        if v is None:
            return default
        total, rest = 0.0, str(v)
        for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", rest):
            total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6,
                                   "ns": 1e-9}[unit]
        return total
    sidecar = None
    for name, svc in services.items():
        w = "%s: service %s" % (path, name)
        hc = svc.get("healthcheck")
        if hc and not hc.get("disable"):
            test = hc.get("test")
            if isinstance(test, str) or (isinstance(test, list) and test[:1] == ["CMD-SHELL"]):
                if SHELL_LESS_IMAGE.search(str(svc.get("image", ""))) or "build" in svc:
                    f.add(w, "healthcheck runs through a shell, which image %r does not have: "
                          "use [\"CMD\", \"/healthagg\", \"probe\"]" % svc.get("image"))
            interval, timeout = secs(hc.get("interval"), 30), secs(hc.get("timeout"), 30)
            if timeout >= interval:
                f.add(w, "healthcheck timeout must be shorter than its interval")
            if isinstance(test, list) and len(test) > 2 and test[0] == "CMD" and \
                    test[1].endswith("healthagg") and test[2] == "probe":
                sidecar = name
    if sidecar is None:
        f.add(path, "no service is health-checked with [\"CMD\", \"/healthagg\", \"probe\"]")
        return errors + f.errors
    probed, gated = set(), []
    side = services[sidecar]
    netns = str(side.get("network_mode", ""))
    if netns.startswith("service:"):
        probed.add(netns.split(":", 1)[1])
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        if deps.get(sidecar, {}).get("condition") == "service_healthy":
            gated.append(name)
    for name in sorted(probed & set(gated)):
        f.add("%s: service %s" % (path, name), "deadlock: healthagg probes it but it waits for "
              "%s service_healthy" % sidecar)
    if not [g for g in gated if g not in probed]:
        f.add(path, "no service waits for %s with condition service_healthy" % sidecar)
    if not quiet:
        print("%s: %s (%d services; %s gated on %s healthy)"
              % ("FAIL" if f.errors else "ok", path, len(services),
                 ", ".join(gated) or "none", sidecar))
    return errors + f.errors


# ------------------------------------------------------------------------------------------------
# Dockerfiles
# ------------------------------------------------------------------------------------------------
def dockerfile_check(path, quiet=False):
    f = Findings()
    with open(path) as fh:
        text = re.sub(r"\\\n", " ", fh.read())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    stages, cur = [], None
    for ln in lines:
        word, _, rest = ln.partition(" ")
        word = word.upper()
        if word == "FROM":
            cur = {"from": rest.split()[0], "insns": []}
            stages.append(cur)
        elif cur is not None:
            cur["insns"].append((word, rest.strip()))
    if not stages:
        return ["%s: no FROM" % path]
    final = stages[-1]
    if final["from"] != "scratch":
        f.add(path, "the final stage must be FROM scratch, not %s" % final["from"])
    ins = {}
    for word, rest in final["insns"]:
        ins.setdefault(word, []).append(rest)

    def exec_form(word):
        vals = ins.get(word) or []
        if len(vals) != 1:
            f.add(path, "the final stage needs exactly one %s" % word)
            return None
        m = re.search(r"(\[.*\])\s*$", vals[0])
        try:
            return json.loads(m.group(1)) if m else None
        except ValueError:
            return None
    if (ins.get("USER") or [None])[-1] != "65532:65532":
        f.add(path, "the final stage must run as USER 65532:65532")
    if exec_form("ENTRYPOINT") != ["/healthagg"]:
        f.add(path, "ENTRYPOINT must be [\"/healthagg\"] (exec form)")
    if exec_form("CMD") != ["serve"]:
        f.add(path, "CMD must be [\"serve\"]")
    hc = (ins.get("HEALTHCHECK") or [""])[0]
    m = re.search(r"\bCMD\s+(\[.*\])\s*$", hc)
    if not m or json.loads(m.group(1)) != ["/healthagg", "probe"]:
        f.add(path, "HEALTHCHECK must be the exec form CMD [\"/healthagg\", \"probe\"]")
    if "EXPOSE" in ins:
        f.add(path, "the image exposes a port: the sidecar listens on loopback by default")
    for word in ("RUN", "ADD"):
        if word in ins:
            f.add(path, "the final stage must not %s anything (no shell in scratch)" % word)
    copies = ins.get("COPY") or []
    if len(copies) != 1 or not copies[0].rstrip().endswith("/healthagg"):
        f.add(path, "the final stage must COPY exactly one file, the binary, to /healthagg")
    if not quiet:
        print("%s: %s (final stage FROM %s)" % ("FAIL" if f.errors else "ok", path,
                                                final["from"]))
    return f.errors


# ------------------------------------------------------------------------------------------------
# Self-test: deliberately broken copies must be rejected
# ------------------------------------------------------------------------------------------------
def _container(td, name):
    return next(c for c in td["containerDefinitions"] if c["name"] == name)


def _set_dep(td, name, cond):
    _container(td, name)["dependsOn"] = [{"containerName": "healthagg", "condition": cond}]


JSON_MUTATIONS = [
    # (description, mutate(td), substring the errors must contain)
    ("unknown member (model)", lambda td: _container(td, "app").update(healthcheck={}),
     'Unknown parameter in containerDefinitions[0]: "healthcheck"'),
    ("string where the model wants an integer",
     lambda td: _container(td, "healthagg")["healthCheck"].update(interval="10"),
     "Invalid type for parameter containerDefinitions[1].healthCheck.interval"),
    ("missing required member (model)", lambda td: td.pop("family"),
     'Missing required parameter in input: "family"'),
    ("interval below 5", lambda td: _container(td, "healthagg")["healthCheck"].update(interval=4),
     "healthCheck.interval: 4 is outside"),
    ("interval above 300",
     lambda td: _container(td, "healthagg")["healthCheck"].update(interval=301),
     "healthCheck.interval: 301 is outside"),
    ("timeout below 2", lambda td: _container(td, "healthagg")["healthCheck"].update(timeout=1),
     "healthCheck.timeout: 1 is outside"),
    ("timeout not below interval",
     lambda td: _container(td, "healthagg")["healthCheck"].update(interval=10, timeout=10),
     "must be shorter than the interval"),
    ("retries above 10", lambda td: _container(td, "healthagg")["healthCheck"].update(retries=11),
     "healthCheck.retries: 11 is outside"),
    ("retries 0", lambda td: _container(td, "healthagg")["healthCheck"].update(retries=0),
     "healthCheck.retries: 0 is outside"),
    ("startPeriod above 300",
     lambda td: _container(td, "healthagg")["healthCheck"].update(startPeriod=301),
     "healthCheck.startPeriod: 301 is outside"),
    ("startPeriod shorter than the sidecar's start_period",
     lambda td: _container(td, "healthagg")["healthCheck"].update(startPeriod=10),
     "shorter than healthagg's start_period"),
    ("CMD-SHELL curl on the shell-less sidecar",
     lambda td: _container(td, "healthagg")["healthCheck"].update(
         command=["CMD-SHELL", "curl -f http://localhost:8099/readyz || exit 1"]),
     "has no shell"),
    ("CMD-SHELL on the ko-built app (the original incident)",
     lambda td: _container(td, "app").update(image="ko.local/app:latest", healthCheck={
         "command": ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"]}),
     "has no shell"),
    ("CMD-SHELL on an image not known to have a shell",
     lambda td: _container(td, "proxy").update(healthCheck={
         "command": ["CMD-SHELL", "true"], "interval": 10, "timeout": 3}),
     "not known to have a shell"),
    ("relative program in the exec form",
     lambda td: _container(td, "healthagg")["healthCheck"].update(
         command=["CMD", "healthagg", "probe"]),
     "not an absolute path"),
    ("the app waits for healthagg HEALTHY (deadlock)",
     lambda td: _set_dep(td, "app", "HEALTHY"), "deadlock"),
    ("the app waits for the proxy, which waits for healthagg HEALTHY (deadlock)",
     lambda td: _container(td, "app").update(dependsOn=[
         {"containerName": "proxy", "condition": "START"}]),
     "deadlock"),
    ("the proxy's check in the live group the health check gates on, while the proxy waits for "
     "healthagg HEALTHY (deadlock)",
     lambda td: _container(td, "healthagg")["environment"][0].update(
         value=json.dumps({"listen": "127.0.0.1:8099", "checks": [
             {"name": "app", "url": "http://127.0.0.1:8080/healthz", "groups": ["live"]},
             {"name": "proxy", "url": "tcp://127.0.0.1:80", "groups": ["live"]}]})),
     "deadlock: healthagg probes it (check proxy)"),
    ("the health check gates on a group no check is in",
     lambda td: _container(td, "healthagg")["healthCheck"].update(
         command=["CMD", "/healthagg", "probe", "--group", "alive"]),
     "no check of HEALTHAGG_CONFIG is in group 'alive'"),
    ("the sidecar without a healthCheck",
     lambda td: _container(td, "healthagg").pop("healthCheck"), "ECS would monitor nothing"),
    ("the sidecar not essential",
     lambda td: _container(td, "healthagg").update(essential=False), "must be essential"),
    ("dependsOn an unknown container",
     lambda td: _container(td, "proxy")["dependsOn"][0].update(containerName="nope"),
     "names no container"),
    ("unknown dependsOn condition",
     lambda td: _container(td, "proxy")["dependsOn"][0].update(condition="READY"),
     "is not one of"),
    ("dependsOn cycle",
     lambda td: _container(td, "healthagg").update(dependsOn=[
         {"containerName": "app", "condition": "START"}]),
     "dependsOn cycle"),
    ("bridge network on Fargate", lambda td: td.update(networkMode="bridge"),
     "needs networkMode awsvpc"),
    ("invalid Fargate size", lambda td: td.update(cpu="512", memory="512"),
     "not allowed with cpu 512"),
    ("HEALTHAGG_CONFIG not JSON",
     lambda td: _container(td, "healthagg")["environment"][0].update(value="{listen:"),
     "HEALTHAGG_CONFIG is not valid JSON"),
    ("HEALTHAGG_CONFIG with an unknown key",
     lambda td: _container(td, "healthagg")["environment"][0].update(
         value=json.dumps({"listen": "127.0.0.1:8099", "chekcs": [],
                           "checks": [{"url": "http://127.0.0.1:8080/healthz"}]})),
     "unknown key 'chekcs'"),
]

TEXT_MUTATIONS = {
    # kind -> list of (description, old, new, expected substring)
    "yaml": [
        ("CloudFormation: the app waits for healthagg HEALTHY (deadlock)",
         "Condition: START", "Condition: HEALTHY", "deadlock"),
        ("CloudFormation: CMD-SHELL on the sidecar",
         'Command: ["CMD", "/healthagg", "probe", "--group", "live"]',
         'Command: ["CMD-SHELL", "curl -f x"]',
         "has no shell"),
        ("CloudFormation: timeout above 60", "Timeout: 3", "Timeout: 61",
         "healthCheck.timeout: 61 is outside"),
        ("CloudFormation: misspelt property (model)", "ReadonlyRootFilesystem:",
         "ReadOnlyRootFilesystem:", 'Unknown parameter in containerDefinitions[1]: '
         '"readOnlyRootFilesystem"'),
    ],
    "tf": [
        ("Terraform: the app waits for healthagg HEALTHY (deadlock)",
         'condition = "START"', 'condition = "HEALTHY"', "deadlock"),
        ("Terraform: retries above 10", "retries     = 3", "retries     = 11",
         "healthCheck.retries: 11 is outside"),
        ("Terraform: string interval (model)", "interval    = 10", 'interval    = "10"',
         "Invalid type for parameter containerDefinitions[1].healthCheck.interval"),
    ],
}


COMPOSE_MUTATIONS = [
    ("compose: healthagg checked through a shell",
     'test: ["CMD", "/healthagg", "probe", "--group", "live"]',
     'test: ["CMD-SHELL", "curl -f http://localhost:8099/readyz || exit 1"]', "through a shell"),
    ("compose: nothing waits for healthagg healthy",
     "condition: service_healthy", "condition: service_started", "no service waits"),
    ("compose: healthcheck timeout not below its interval",
     "timeout: 3s", "timeout: 10s", "shorter than its interval"),
    ("compose: the probed app waits for healthagg healthy (deadlock)",
     '    ports:\n      - "8080:8080"\n',
     '    ports:\n      - "8080:8080"\n'
     '    depends_on:\n      healthagg:\n        condition: service_healthy\n', None),
]

DOCKERFILE_MUTATIONS = [
    ("Dockerfile: runs as root", "USER 65532:65532\n", "", "USER 65532:65532"),
    ("Dockerfile: shell-form HEALTHCHECK",
     'CMD ["/healthagg", "probe"]', "CMD /healthagg probe", "HEALTHCHECK must be the exec form"),
    ("Dockerfile: exposes a port", 'CMD ["serve"]\n', 'CMD ["serve"]\nEXPOSE 8099\n',
     "exposes a port"),
    ("Dockerfile: final stage not scratch", "FROM scratch", "FROM debian:bookworm-slim",
     "must be FROM scratch"),
]


def self_test(good_json, good_yaml, good_tf, good_compose=None, good_dockerfile=None):
    passed, failed = 0, 0
    tmp = tempfile.mkdtemp(prefix="deploy-check-")

    def expect_reject(desc, path, needle, empty=False):
        nonlocal passed, failed
        errors, count = check_taskdef_files([path], quiet=True)
        hit = [e for e in errors if needle in e]
        if (count or empty) and hit:
            passed += 1
            print("ok: rejected: %s\n      %s" % (desc, hit[0]))
        else:
            failed += 1
            print("FAIL: not rejected as expected (%r): %s\n      errors: %s"
                  % (needle, desc, errors or "none"))

    try:
        # The originals must pass, or the rejections below prove nothing.
        for path in (good_json, good_yaml, good_tf):
            errors, count = check_taskdef_files([path], quiet=True)
            if errors or not count:
                failed += 1
                print("FAIL: the original %s does not pass: %s" % (path, errors))
            else:
                passed += 1
                print("ok: the original %s passes" % path)
        with open(good_json) as fh:
            base = json.load(fh)
        for i, (desc, mutate, needle) in enumerate(JSON_MUTATIONS):
            td = copy.deepcopy(base)
            mutate(td)
            path = os.path.join(tmp, "bad-%02d.json" % i)
            with open(path, "w") as fh:
                json.dump(td, fh)
            expect_reject(desc, path, needle)
        for kind, good in (("yaml", good_yaml), ("tf", good_tf)):
            with open(good) as fh:
                text = fh.read()
            for i, (desc, old, new, needle) in enumerate(TEXT_MUTATIONS[kind]):
                if old not in text:
                    failed += 1
                    print("FAIL: %s: %r not found in %s (update the self-test)" % (desc, old,
                                                                                 good))
                    continue
                path = os.path.join(tmp, "bad-%02d.%s" % (i, kind))
                with open(path, "w") as fh:
                    fh.write(text.replace(old, new, 1))
                expect_reject(desc, path, needle)
        if good_compose:
            with open(good_compose) as fh:
                text = fh.read()
            # The copy lives in a temporary directory: make its build context absolute.
            root = os.path.abspath(os.path.join(os.path.dirname(good_compose), ".."))
            text = re.sub(r"(?m)^(\s*context:\s*)\.\.\s*$", lambda m: m.group(1) + root, text)
            errors = compose_check(good_compose)
            if errors:
                failed += 1
                print("FAIL: the original %s does not pass: %s" % (good_compose, errors))
            else:
                passed += 1
            for i, (desc, old, new, needle) in enumerate(COMPOSE_MUTATIONS):
                if old not in text:
                    failed += 1
                    print("FAIL: %s: %r not found in %s" % (desc, old, good_compose))
                    continue
                path = os.path.join(tmp, "bad-compose-%02d.yaml" % i)
                with open(path, "w") as fh:
                    fh.write(text.replace(old, new, 1))
                errors = compose_check(path, quiet=True)
                hit = [e for e in errors if needle is None and
                       ("deadlock" in e or "ircular" in e) or needle and needle in e]
                if hit:
                    passed += 1
                    print("ok: rejected: %s\n      %s" % (desc, hit[0]))
                else:
                    failed += 1
                    print("FAIL: not rejected as expected: %s\n      errors: %s"
                          % (desc, errors or "none"))
        if good_dockerfile:
            with open(good_dockerfile) as fh:
                text = fh.read()
            if dockerfile_check(good_dockerfile):
                failed += 1
                print("FAIL: the original %s does not pass" % good_dockerfile)
            else:
                passed += 1
            for i, (desc, old, new, needle) in enumerate(DOCKERFILE_MUTATIONS):
                path = os.path.join(tmp, "Dockerfile.bad-%02d" % i)
                with open(path, "w") as fh:
                    fh.write(text.replace(old, new, 1))
                errors = dockerfile_check(path, quiet=True) if old in text else []
                hit = [e for e in errors if needle in e]
                if hit:
                    passed += 1
                    print("ok: rejected: %s\n      %s" % (desc, hit[0]))
                else:
                    failed += 1
                    print("FAIL: not rejected as expected: %s\n      errors: %s"
                          % (desc, errors or "none (or %r not found)" % old))
        # A file that holds no task definition at all must not pass either.
        path = os.path.join(tmp, "empty.yaml")
        with open(path, "w") as fh:
            fh.write("Resources: {}\n")
        expect_reject("a CloudFormation template without a task definition", path,
                      "no task definition found", empty=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("self-test: %d passed, %d failed" % (passed, failed))
    return failed == 0


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__ + "\nRules beyond the API model:\n" + RULES)
        return 0 if len(argv) >= 2 else 2
    cmd, args = argv[1], argv[2:]
    if cmd == "taskdef" and args:
        errors, count = check_taskdef_files(args)
        if not count and not errors:
            errors = ["no task definition checked"]
    elif cmd == "configs" and len(args) >= 2:
        errors = configs_check(args[0], args[1:])
    elif cmd == "agree" and len(args) >= 2:
        errors = agree_check(args)
    elif cmd == "compose" and len(args) == 1:
        errors = compose_check(args[0])
    elif cmd == "dockerfile" and args:
        errors = [e for p in args for e in dockerfile_check(p)]
    elif cmd == "self-test" and 3 <= len(args) <= 5:
        return 0 if self_test(*args) else 1
    else:
        sys.stderr.write("usage: see %s --help\n" % argv[0])
        return 2
    for e in errors:
        print("error: " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
