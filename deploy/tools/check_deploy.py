#!/usr/bin/env python3
"""Cross-checks deploy/ against itself and against the Rust sources, where schemas cannot look:

- every IMGPIPE_* variable (compose, ConfigMap, Secret, container env, Dockerfile ENV) is a key
  of the config in contract/src/config/ (the binary refuses an unknown SECTION__KEY and ignores an
  unknown single word, either way a mistake here) and its value is read as the key's type the way
  Config::load reads variables (string settings as they are; others as a TOML scalar or array,
  else a string);
- access control and S3 credentials: no service turns access control off
  (IMGPIPE_ACCESS__ENABLED=false, IMGPIPE_ACCESS__INSECURE=true), every imgpipe service on an
  external S3 (IMGPIPE_OBJECT_STORE__KIND=s3) is given IMGPIPE_OBJECT_STORE__ACCESS_KEY and
  __SECRET_KEY (there are no built-in ones), and the image bakes in no secret (ENV/ARG);
- every imgpipe container runs a subcommand of imgpipe/src/cli.rs;
- MinIO publishes to the exchange and routing key the code uses (`<prefix>.events`,
  `storage.object.created`), and KEDA watches the queue its target Deployment consumes
  (`<prefix>.<queue>`);
- references resolve: depends_on, volumes, bind mounts, envFrom, secretKeyRefs, Service and PDB
  selectors, Service target ports, Ingress backends, ScaledObject targets, TriggerAuthentication
  secrets, Dockerfile COPY sources; kustomization.yaml lists every manifest and nothing else;
- deploy/gateway/nginx.conf parses (crossplane) and the shell compose runs passes shellcheck;
- conventions: probes on /healthz and /readyz, non-root, read-only root, no service links,
  resource requests and memory limits, no `replicas` on a KEDA-scaled Deployment.

Usage: check_deploy.py REPO_ROOT [DEPLOY_DIR]. DEPLOY_DIR (default REPO_ROOT/deploy) is the
deploy/ tree to check; the code is always read from REPO_ROOT. Prints what it checked; exits 1
listing every problem.
"""

from __future__ import annotations

import glob
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

errors: list[str] = []


def error(where: str, message: str) -> None:
    errors.append(f"{where}: {message}")


def read(root: Path, rel: str) -> str:
    path = root / rel
    if not path.exists():
        error(rel, "missing (deploy/tools/check_deploy.py reads it)")
        return ""
    return path.read_text()


def must(match: re.Match | None, rel: str, what: str) -> str:
    if match is None:
        error(rel, f"cannot find {what}; update deploy/tools/check_deploy.py to the new code")
        return ""
    return match.group(1)


def name_of(root: Path, path: Path) -> str:
    """PATH as shown in messages: relative to the repository when inside it."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# --- Facts from the Rust sources ----------------------------------------------------------------


# Where the facts live in the code. The config is one file or a module folder of them.
CONFIG = "contract/src/config"
TOPOLOGY = "engines/bus-rabbitmq/src/topology.rs"
TOPICS = "contract/src/event/topics.rs"
ROLES = "imgpipe/src/roles.rs"
CLI = "imgpipe/src/cli.rs"


def read_config(root: Path) -> str:
    """The config's sources: CONFIG.rs, else every CONFIG/*.rs but its tests."""
    single = root / f"{CONFIG}.rs"
    if single.exists():
        return single.read_text()
    files = sorted(p for p in (root / CONFIG).glob("*.rs") if p.name != "tests.rs")
    if not files:
        error(CONFIG, f"neither {CONFIG}.rs nor {CONFIG}/*.rs exists (deploy/tools/check_deploy.py reads it)")
    return "\n".join(p.read_text() for p in files)


class Facts:
    """What deploy/ must agree with, read from the code."""

    def __init__(self, root: Path):
        config = read_config(root)
        structs = {
            m.group(1): re.findall(r"^\s*pub (\w+): ([^,\n]+),", m.group(2), re.M)
            for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", config, re.S)
        }
        self.enums = {
            m.group(1): {v.lower() for v in re.findall(r"^\s*(\w+),", m.group(2), re.M)}
            for m in re.finditer(r"pub enum (\w+) \{(.*?)\n\}", config, re.S)
        }
        # IMGPIPE_X or IMGPIPE_SECTION__KEY -> Rust type
        self.keys: dict[str, str] = {}
        for field, ty in structs.get("Config", []):
            if ty in structs:
                for key, sub in structs[ty]:
                    self.keys[f"IMGPIPE_{field.upper()}__{key.upper()}"] = sub
            else:
                self.keys[f"IMGPIPE_{field.upper()}"] = ty
        if len(self.keys) < 10:
            error(CONFIG, "cannot read the config keys; update deploy/tools/check_deploy.py")
        for key in ("IMGPIPE_ACCESS__ENABLED", "IMGPIPE_OBJECT_STORE__ACCESS_KEY", "IMGPIPE_OBJECT_STORE__SECRET_KEY"):
            if key not in self.keys:
                error(CONFIG, f"no config key {key}; update deploy/tools/check_deploy.py")
        # The default in `impl Default for BusConfig` (no brace between the name and the value).
        self.prefix = must(re.search(r"BusConfig \{[^}]*?prefix: \"([^\"]*)\"", config), CONFIG, "bus.prefix default")
        topology = read(root, TOPOLOGY)
        self.exchange_suffix = must(
            re.search(r"fn exchange\(&self\) -> String \{\s*self\.join\(\"([^\"]+)\"\)", topology),
            TOPOLOGY,
            "the exchange name",
        )
        topics = read(root, TOPICS)
        self.object_created = must(
            re.search(r"OBJECT_CREATED: &'static str = \"([^\"]+)\"", topics),
            TOPICS,
            "Topic::OBJECT_CREATED",
        )
        # role -> the queue it consumes: each role's crate (named in roles.rs) declares its
        # subscription in its lib.rs.
        roles = read(root, ROLES)
        self.queues = {}
        for role, crate in sorted(set(re.findall(r"\(self\.(\w+), imgpipe_(\w+)::subscription\(\)\)", roles))):
            rel = f"{crate.replace('_', '-')}/src/lib.rs"
            queue = re.search(
                r"fn subscription\(\) -> Subscription \{\s*Subscription::new\(\s*\"([^\"]+)\"", read(root, rel)
            )
            if queue:
                self.queues[role.replace("_", "-")] = queue.group(1)
        if not {"resizer", "recognizer"} <= self.queues.keys():
            error(ROLES, "cannot find the resizer and recognizer subscriptions")
        cli = read(root, CLI)
        body = must(re.search(r"enum Command \{(.*?)\n\}", cli, re.S), CLI, "enum Command")
        self.subcommands = {
            re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower() for name in re.findall(r"^\s*(\w+)\(", body, re.M)
        }
        if "resizer" not in self.subcommands:
            error(CLI, "cannot read the subcommands")

    def check_env(self, where: str, name: str, value) -> None:
        """An IMGPIPE_* variable: a known key, with a value Config::load reads as its type."""
        if not name.startswith("IMGPIPE_") or name == "IMGPIPE_CONFIG" or name.startswith("IMGPIPE_TEST_"):
            return
        ty = self.keys.get(name)
        if ty is None:
            effect = "ignores it" if "__" not in name else "would refuse to start"
            error(where, f"{name} is not a config key ({CONFIG}); the process {effect}")
            return
        if value is None:
            return
        raw = str(value).lower() if isinstance(value, bool) else str(value)
        inner = re.sub(r"^Option<(.*)>$", r"\1", ty)
        # Settings whose default is a string (strings, paths, addresses, enums) take the value as
        # it is; the others read it as TOML first.
        if inner in {"String", "PathBuf", "SocketAddr"} or inner in self.enums:
            parsed = raw
        else:
            try:
                parsed = tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError:
                parsed = raw
        ok = {
            "String": True,
            "PathBuf": True,
            "SocketAddr": True,
            "bool": isinstance(parsed, bool),
        }.get(inner)
        if inner.startswith("Vec<"):
            ok = isinstance(parsed, list)
        if inner in {"u8", "u16", "u32", "u64", "usize", "i32", "i64"}:
            ok = isinstance(parsed, int) and not isinstance(parsed, bool) and parsed >= 0
        if inner in self.enums:
            ok = isinstance(parsed, str) and parsed in self.enums[inner]
        if ok is False:
            error(where, f"{name}={raw!r} is not read as a {ty}")

    def check_access(self, where: str, env: dict) -> None:
        """One imgpipe service's whole environment (a value None: set, but not known here, as in a
        Secret's base64 `data`): access control stays on, and an external S3 comes with its
        credentials."""
        if str(env.get("IMGPIPE_ACCESS__ENABLED", "true")).lower() == "false":
            error(where, "IMGPIPE_ACCESS__ENABLED=false: every caller would be an admin; keep access control on")
        if str(env.get("IMGPIPE_ACCESS__INSECURE", "false")).lower() == "true":
            error(where, "IMGPIPE_ACCESS__INSECURE=true: keep access control on (keys from `imgpipe keys create`)")
        if str(env.get("IMGPIPE_OBJECT_STORE__KIND", "embedded")) == "s3":
            for key in ("IMGPIPE_OBJECT_STORE__ACCESS_KEY", "IMGPIPE_OBJECT_STORE__SECRET_KEY"):
                if env.get(key, "") == "":
                    error(where, f"object store kind s3 without {key}: there are no built-in S3 credentials")


# --- compose ------------------------------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+]([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value):
    """What compose makes of VALUE with no variables set: the defaults."""
    if not isinstance(value, str):
        return value
    text = value.replace("$$", "\0")
    text = INTERPOLATION.sub(lambda m: m.group(2) or "", text)
    return text.replace("\0", "$")


def environment(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: interpolate(v) for k, v in env.items()}


def check_compose(root: Path, deploy: Path, facts: Facts) -> str:
    rel = f"{name_of(root, deploy)}/compose.yaml"
    doc = yaml.safe_load((deploy / "compose.yaml").read_text())
    services = doc.get("services", {})
    volumes = set((doc.get("volumes") or {}).keys())
    imgpipe = []
    for name, svc in services.items():
        where = f"{rel} services.{name}"
        for dep in svc.get("depends_on") or {}:
            if dep not in services:
                error(where, f"depends_on {dep}: no such service")
        for mount in svc.get("volumes") or []:
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
            if source.startswith((".", "/")):
                if not (deploy / source).exists():
                    error(where, f"bind mount {source} does not exist")
            elif source and source not in volumes:
                error(where, f"volume {source} is not declared under volumes:")
        for key, value in (("deploy.replicas", (svc.get("deploy") or {}).get("replicas")),
                           ("healthcheck.retries", (svc.get("healthcheck") or {}).get("retries"))):
            if value is not None and not str(interpolate(value)).isdigit():
                error(where, f"{key} is {value!r}, not a whole number")
        build = svc.get("build")
        if build:
            context = deploy / build.get("context", ".")
            if not (context / build.get("dockerfile", "Dockerfile")).exists():
                error(where, "build: dockerfile not found")
        if "imgpipe" in str(svc.get("image", "")) or build:
            imgpipe.append(name)
            command = svc.get("command") or []
            if not command or command[0] not in facts.subcommands:
                error(where, f"command {command!r} is not an imgpipe subcommand {sorted(facts.subcommands)}")
            if not svc.get("healthcheck"):
                error(where, "no healthcheck")
            for key, value in environment(svc).items():
                facts.check_env(where, key, value)
            facts.check_access(where, environment(svc))
    if not imgpipe:
        error(rel, "no imgpipe service found")
    prefixes = {environment(services[n]).get("IMGPIPE_BUS__PREFIX", facts.prefix) for n in imgpipe}
    exchange = f"{prefixes.pop()}.{facts.exchange_suffix}" if len(prefixes) == 1 else None
    if exchange is None:
        error(rel, "the imgpipe services disagree on IMGPIPE_BUS__PREFIX")
    notifiers = [n for n, s in services.items() if any(k.startswith("MINIO_NOTIFY_AMQP_") for k in environment(s))]
    for name in notifiers:
        env = environment(services[name])
        where = f"{rel} services.{name}"
        want = {
            "MINIO_NOTIFY_AMQP_ENABLE_PRIMARY": "on",
            "MINIO_NOTIFY_AMQP_EXCHANGE_PRIMARY": exchange,
            "MINIO_NOTIFY_AMQP_EXCHANGE_TYPE_PRIMARY": "topic",
            "MINIO_NOTIFY_AMQP_ROUTING_KEY_PRIMARY": facts.object_created,
            "MINIO_NOTIFY_AMQP_DURABLE_PRIMARY": "on",
            "MINIO_NOTIFY_AMQP_DELIVERY_MODE_PRIMARY": "2",
        }
        for key, value in want.items():
            if str(env.get(key)) != value:
                error(where, f"{key} is {env.get(key)!r}; the code needs {value!r}")
        for key in ("MINIO_NOTIFY_AMQP_AUTO_DELETED_PRIMARY", "MINIO_NOTIFY_AMQP_INTERNAL_PRIMARY"):
            if env.get(key, "off") != "off":
                error(where, f"{key} must stay off: imgpipe declares the exchange without it")
    if not notifiers:
        error(rel, "no service configures MinIO's AMQP notifications")
    originals = {environment(services[n]).get("IMGPIPE_OBJECT_STORE__ORIGINALS_BUCKET", "originals") for n in imgpipe}
    setup = " ".join(
        " ".join(s.get("command") or []) if isinstance(s.get("command"), list) else str(s.get("command"))
        for s in services.values()
    )
    events = re.findall(r"mc event add ([^\n]*)", setup)
    if not events or not all(f"/{o} " in events[0] + " " for o in originals) or "arn:minio:sqs::PRIMARY:amqp" not in events[0]:
        error(rel, f"no `mc event add ... local/<originals bucket> arn:minio:sqs::PRIMARY:amqp` (found {events})")
    return f"compose references and code names ({len(services)} services, exchange {exchange})"


# --- Kubernetes ---------------------------------------------------------------------------------

KUSTOMIZE_FIELDS = {
    "apiVersion", "kind", "metadata", "namespace", "namePrefix", "nameSuffix", "resources", "labels",
    "commonLabels", "commonAnnotations", "images", "replicas", "patches", "configMapGenerator",
    "secretGenerator", "generatorOptions", "components", "transformers", "generators", "replacements",
}


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s(root: Path, deploy: Path, facts: Facts) -> str:
    base = deploy / "k8s"
    k8s_rel = f"{name_of(root, deploy)}/k8s"
    kust_rel = f"{k8s_rel}/kustomization.yaml"
    kust = yaml.safe_load((base / "kustomization.yaml").read_text())
    if kust.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or kust.get("kind") != "Kustomization":
        error(kust_rel, "apiVersion/kind must be kustomize.config.k8s.io/v1beta1 Kustomization")
    for key in set(kust) - KUSTOMIZE_FIELDS:
        error(kust_rel, f"unknown field {key}")
    listed = kust.get("resources") or []
    on_disk = sorted(str(p.relative_to(base)) for p in base.rglob("*.yaml") if p.name != "kustomization.yaml")
    for missing in sorted(set(on_disk) - set(listed)):
        error(kust_rel, f"{missing} is not listed under resources")
    images = {i.get("name") for i in kust.get("images") or []}
    objects = []
    for rel in listed:
        path = base / rel
        if not path.exists():
            error(kust_rel, f"resource {rel} does not exist")
            continue
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        if rel.startswith("keda/") and len(docs) != 1:
            error(f"{k8s_rel}/{rel}", "files under keda/ hold one object each (check-jsonschema reads one)")
        objects.extend((f"{k8s_rel}/{rel}", doc) for doc in docs)
    by_kind: dict[str, dict[str, tuple[str, dict]]] = {}
    for where, doc in objects:
        name = (doc.get("metadata") or {}).get("name")
        if not name:
            error(where, f"a {doc.get('kind')} without metadata.name")
            continue
        ns = doc["metadata"].get("namespace")
        if ns and ns != kust.get("namespace"):
            error(where, f"{name}: namespace {ns} differs from kustomization's {kust.get('namespace')}")
        if name in by_kind.setdefault(doc.get("kind"), {}):
            error(where, f"two {doc.get('kind')} objects named {name}")
        by_kind[doc["kind"]][name] = (where, doc)

    def data_keys(kind: str, name: str) -> set[str] | None:
        found = by_kind.get(kind, {}).get(name)
        if not found:
            return None
        doc = found[1]
        return set((doc.get("data") or {}).keys()) | set((doc.get("stringData") or {}).keys())

    def data_values(kind: str, name: str) -> dict:
        """A ConfigMap's or Secret's keys with their values (a Secret's `data` is base64: None)."""
        found = by_kind.get(kind, {}).get(name)
        if not found:
            return {}
        doc = found[1]
        data = doc.get("data") or {}
        if kind == "Secret":
            data = dict.fromkeys(data)
        return {**data, **(doc.get("stringData") or {})}

    configs = by_kind.get("ConfigMap", {})
    prefix = facts.prefix
    for kind in ("ConfigMap", "Secret"):
        for name, (where, doc) in by_kind.get(kind, {}).items():
            values = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
            for key, value in values.items():
                facts.check_env(f"{where} {kind}/{name}", key, value if kind == "ConfigMap" or "stringData" in doc else None)
            prefix = values.get("IMGPIPE_BUS__PREFIX", prefix) if kind == "ConfigMap" else prefix

    deployments = by_kind.get("Deployment", {})
    scaled = {so["spec"]["scaleTargetRef"].get("name") for _, so in by_kind.get("ScaledObject", {}).values()}
    role_of: dict[str, str] = {}
    for name, (where, dep) in deployments.items():
        where = f"{where} Deployment/{name}"
        spec = dep.get("spec", {})
        template = spec.get("template", {})
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not matches((spec.get("selector") or {}).get("matchLabels") or {}, labels):
            error(where, "selector.matchLabels do not match the pod template's labels")
        if name in scaled and "replicas" in spec:
            error(where, "scaled by KEDA: drop spec.replicas, or each apply resets the count")
        pod = template.get("spec", {})
        if pod.get("enableServiceLinks") is not False:
            error(where, "set enableServiceLinks: false (service variables named IMGPIPE_* would be read as config)")
        if (pod.get("securityContext") or {}).get("runAsNonRoot") is not True:
            error(where, "pod securityContext.runAsNonRoot must be true")
        volumes = {v.get("name") for v in pod.get("volumes") or []}
        for c in pod.get("containers", []):
            cw = f"{where} container {c.get('name')}"
            if c.get("image") not in images:
                error(cw, f"image {c.get('image')} is not set by kustomization images {sorted(images)}")
            args = c.get("args") or []
            if not args or args[0] not in facts.subcommands:
                error(cw, f"args {args!r} do not start with an imgpipe subcommand")
            else:
                role_of[name] = args[0]
            for src in c.get("envFrom") or []:
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if key in src and data_keys(kind, src[key].get("name")) is None:
                        error(cw, f"envFrom {kind} {src[key].get('name')} is not defined")
            env: dict = {}
            for src in c.get("envFrom") or []:
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if key in src:
                        env.update(data_values(kind, src[key].get("name")))
            for var in c.get("env") or []:
                facts.check_env(cw, var.get("name", ""), var.get("value"))
                env[var.get("name", "")] = var.get("value")
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref.get("key") not in (data_keys("Secret", ref.get("name")) or set()):
                    error(cw, f"secretKeyRef {ref.get('name')}/{ref.get('key')} is not defined")
            facts.check_access(cw, env)
            ports = {p.get("name") for p in c.get("ports") or []}
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                get = (c.get(probe) or {}).get("httpGet") or {}
                if get.get("path") != path:
                    error(cw, f"{probe} must GET {path}")
                if get.get("port") not in ports and not isinstance(get.get("port"), int):
                    error(cw, f"{probe} port {get.get('port')} is not a container port")
            sc = c.get("securityContext") or {}
            if sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False:
                error(cw, "needs readOnlyRootFilesystem: true and allowPrivilegeEscalation: false")
            res = c.get("resources") or {}
            if not res.get("requests") or "memory" not in (res.get("limits") or {}):
                error(cw, "needs resources.requests and a memory limit")
            for mount in c.get("volumeMounts") or []:
                if mount.get("name") not in volumes:
                    error(cw, f"volumeMount {mount.get('name')} has no volume")

    def pods_for(selector: dict):
        return [
            (n, d) for n, (_, d) in deployments.items()
            if matches(selector, ((d["spec"]["template"].get("metadata") or {}).get("labels") or {}))
        ]

    services = by_kind.get("Service", {})
    for name, (where, svc) in services.items():
        targets = pods_for((svc.get("spec") or {}).get("selector") or {})
        if not targets:
            error(f"{where} Service/{name}", "selector matches no Deployment")
        for port in svc["spec"].get("ports", []):
            tp = port.get("targetPort")
            for dname, dep in targets:
                names = {p.get("name") for c in dep["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []}
                if isinstance(tp, str) and tp not in names:
                    error(f"{where} Service/{name}", f"targetPort {tp} is not a port of Deployment {dname}")
    for name, (where, pdb) in by_kind.get("PodDisruptionBudget", {}).items():
        if not pods_for(((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}):
            error(f"{where} PodDisruptionBudget/{name}", "selector matches no Deployment")
    for name, (where, ing) in by_kind.get("Ingress", {}).items():
        for rule in (ing.get("spec") or {}).get("rules") or []:
            for p in ((rule.get("http") or {}).get("paths")) or []:
                backend = (p.get("backend") or {}).get("service") or {}
                svc = services.get(backend.get("name"))
                if svc is None:
                    error(f"{where} Ingress/{name}", f"backend service {backend.get('name')} is not defined")
                    continue
                port = backend.get("port") or {}
                if "name" in port and port["name"] not in {q.get("name") for q in svc[1]["spec"].get("ports", [])}:
                    error(f"{where} Ingress/{name}", f"service {backend.get('name')} has no port {port['name']}")
    auths = by_kind.get("TriggerAuthentication", {})
    for name, (where, ta) in auths.items():
        for ref in (ta.get("spec") or {}).get("secretTargetRef") or []:
            if ref.get("key") not in (data_keys("Secret", ref.get("name")) or set()):
                error(f"{where} TriggerAuthentication/{name}", f"secret {ref.get('name')} has no key {ref.get('key')}")
    for name, (where, so) in by_kind.get("ScaledObject", {}).items():
        where = f"{where} ScaledObject/{name}"
        spec = so.get("spec") or {}
        target = (spec.get("scaleTargetRef") or {}).get("name")
        if target not in deployments or (spec["scaleTargetRef"].get("kind") or "Deployment") != "Deployment":
            error(where, f"scaleTargetRef {target} is not a Deployment here")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            error(where, "minReplicaCount > maxReplicaCount")
        for trig in spec.get("triggers") or []:
            ref = (trig.get("authenticationRef") or {}).get("name")
            if ref and ref not in auths:
                error(where, f"authenticationRef {ref} is not defined")
            if trig.get("type") == "rabbitmq":
                queue = facts.queues.get(role_of.get(target, ""))
                want = f"{prefix}.{queue}" if queue else None
                if (trig.get("metadata") or {}).get("queueName") != want:
                    error(where, f"queueName {trig.get('metadata', {}).get('queueName')!r}; Deployment {target} consumes {want!r}")
    kinds = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_kind.items()))
    return f"kubernetes references and code names ({kinds})"


# --- Dockerfile ---------------------------------------------------------------------------------


def check_dockerfile(root: Path, deploy: Path, facts: Facts) -> str:
    rel = f"{name_of(root, deploy)}/Dockerfile"
    text = (deploy / "Dockerfile").read_text().replace("\\\n", " ")
    count = 0
    for line in text.splitlines():
        words = line.split()
        if words and words[0].upper() in {"ENV", "ARG"}:
            for name, value in re.findall(r"(\w+)=(\S*)", line):
                if words[0].upper() == "ENV":
                    facts.check_env(f"{rel} ENV", name, value)
                if re.search(r"SECRET|PASSWORD|ACCESS_KEY|TOKEN|API_KEY", name, re.I):
                    error(f"{rel} {words[0].upper()}", f"{name}: no secret in the image (anyone with it can read it); "
                          "pass it at run time")
        if not words or words[0].upper() not in {"COPY", "ADD"} or any(w.startswith("--from") for w in words):
            continue
        sources = [w for w in words[1:] if not w.startswith("--")][:-1]
        for src in sources:
            count += 1
            if src != "." and not glob.glob(str(root / src)):
                error(rel, f"COPY source {src} does not exist in the repository")
    return f"Dockerfile COPY sources exist ({count}), ENV keys are config keys, no secret in ENV or ARG"


# --- gateway and inline shell -------------------------------------------------------------------


def check_gateway(root: Path, deploy: Path) -> str:
    """nginx.conf parses: known directives, in contexts that allow them, with valid arguments."""
    import crossplane

    checked = []
    for path in sorted(deploy.rglob("nginx.conf")):
        rel = name_of(root, path)
        checked.append(rel)
        payload = crossplane.parse(str(path), single=True, strict=True, check_ctx=True, check_args=True)
        for config in payload["config"]:
            for problem in config["errors"]:
                error(f"{rel}:{problem.get('line')}", problem["error"])
    return f"{', '.join(checked)} parses (crossplane, strict)"


def check_compose_shell(root: Path, deploy: Path) -> str:
    """shellcheck on the scripts compose runs with `sh -c` (after compose's $$ unescaping)."""
    doc = yaml.safe_load((deploy / "compose.yaml").read_text())
    shellcheck = Path(sys.executable).parent / "shellcheck"
    count = 0
    for name, svc in (doc.get("services") or {}).items():
        entry = svc.get("entrypoint") or []
        if not (isinstance(entry, list) and entry and entry[0] in {"/bin/sh", "sh", "/bin/bash", "bash"}):
            continue
        script = "\n".join(svc.get("command") or []).replace("$$", "$")
        shell = "bash" if "bash" in entry[0] else "sh"
        result = subprocess.run(
            [str(shellcheck), "--shell", shell, "-"], input=script, capture_output=True, text=True, check=False
        )
        count += 1
        if result.returncode != 0:
            error(f"{name_of(root, deploy)}/compose.yaml services.{name} command", result.stdout.strip())
    return f"shell in compose commands ({count}, shellcheck)"


def main() -> int:
    root = Path(sys.argv[1]).resolve()
    deploy = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else root / "deploy"
    facts = Facts(root)
    checks = [
        lambda: check_compose(root, deploy, facts),
        lambda: check_k8s(root, deploy, facts),
        lambda: check_dockerfile(root, deploy, facts),
        lambda: check_gateway(root, deploy),
        lambda: check_compose_shell(root, deploy),
    ]
    failed = bool(errors)
    for line in errors:
        print(f"FAIL {line}")
    for check in [] if failed else checks:
        before = len(errors)
        summary = check()
        if len(errors) == before:
            print(f"ok   {summary}")
        for line in errors[before:]:
            print(f"FAIL {line}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
