#!/usr/bin/env bash
# Offline checks of deploy/ (no image is built and no cluster is needed):
# every REALTIMED_*/CLERK_* name in the Dockerfile, the systemd unit, its
# env file and the Kubernetes manifests is the variable of a real realtimed
# flag (parsed from `realtimed --help`); the flags they pass exist; the YAML
# parses; probes, ports and grace period agree with the configuration;
# the Dockerfile copies what scripts/dist.sh builds; systemd-analyze
# verify and kubectl kustomize pass where those tools exist.
#
#   make build && scripts/test-deploy.sh      (or: make test-deploy)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
for b in realtimed realtimectl; do
  [[ -x "bin/$b" ]] || { echo "test-deploy: no bin/$b (run make build)" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bin/realtimed --help > "$work/realtimed.help" 2>&1
bin/realtimectl health --help > "$work/health.help"

python3 - "$work" <<'PY'
import re, sys, pathlib, yaml

work = pathlib.Path(sys.argv[1])
failures = []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)

def flags_and_envs(help_text):
    flags = set(re.findall(r"^  --([a-z0-9-]+)", help_text, re.M))
    envs = set(re.findall(r"^      env: ([A-Z0-9_]+)$", help_text, re.M))
    return flags, envs

rt_flags, rt_envs = flags_and_envs((work / "realtimed.help").read_text())
hc_flags, _ = flags_and_envs((work / "health.help").read_text())
check(len(rt_envs) > 30 and "REALTIMED_ADDR" in rt_envs and "CLERK_SECRET_KEY" in rt_envs,
      f"realtimed --help lists {len(rt_envs)} environment variables")

name_re = re.compile(r"\b((?:REALTIMED|CLERK)_[A-Z0-9_]+)\b")
def names_in(text):
    return set(name_re.findall(text))

def check_names(where, names):
    unknown = sorted(n for n in names if n not in rt_envs)
    check(not unknown, f"{where}: {len(names)} names, all realtimed flags' variables" +
          (f" (unknown: {', '.join(unknown)})" if unknown else ""))

deploy = pathlib.Path("deploy")

# Dockerfile
docker = (deploy / "Dockerfile").read_text()
check_names("deploy/Dockerfile", names_in(docker))
env_addr = re.search(r"REALTIMED_ADDR=:(\d+)", docker)
expose = re.search(r"^EXPOSE (\d+)$", docker, re.M)
check(env_addr and expose and env_addr.group(1) == expose.group(1), "Dockerfile: EXPOSE is REALTIMED_ADDR's port")
hc = re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])$", docker, re.M | re.S)
check(hc is not None, "Dockerfile: HEALTHCHECK in exec form")
if hc:
    import json
    argv = json.loads(hc.group(1).replace("\\\n", ""))
    used = {a[2:] for a in argv if a.startswith("--")}
    check(argv[:2] == ["/usr/local/bin/realtimectl", "health"] and used <= hc_flags,
          f"HEALTHCHECK runs realtimectl health with real flags: {' '.join(argv)}")
    check(any(a.endswith(":" + env_addr.group(1)) for a in argv), "HEALTHCHECK probes REALTIMED_ADDR's port")
copies = re.findall(r"^COPY (dist/\S+(?: dist/\S+)*) \S+$", docker, re.M)
srcs = [s for c in copies for s in c.split()]
check(set(srcs) == {"dist/SHA256SUMS", "dist/linux-${TARGETARCH}/realtimed", "dist/linux-${TARGETARCH}/realtimectl"},
      f"Dockerfile copies dist.sh's output: {srcs}")
check(re.search(r"^USER 65532", docker, re.M) is not None and "distroless/static" in docker, "Dockerfile: static distroless, non-root")
check("ENTRYPOINT [\"/usr/local/bin/realtimed\"]" in docker, "Dockerfile: ENTRYPOINT is realtimed")

# systemd
unit = (deploy / "systemd" / "realtimed.service").read_text()
check_names("deploy/systemd/realtimed.service", names_in(unit))
check_names("deploy/systemd/realtimed.env.example", names_in((deploy / "systemd" / "realtimed.env.example").read_text()))
for key in ["DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "EnvironmentFile=", "StateDirectory=realtimed"]:
    check(key in unit, f"realtimed.service has {key}")
drain = re.search(r"REALTIMED_DRAIN_DELAY=(\d+)s", unit)
shut = re.search(r"REALTIMED_SHUTDOWN_TIMEOUT=(\d+)s", unit)
stop = re.search(r"^TimeoutStopSec=(\d+)s", unit, re.M)
check(drain and shut and stop and int(stop.group(1)) > int(drain.group(1)) + int(shut.group(1)),
      "realtimed.service: TimeoutStopSec exceeds drain delay + shutdown timeout")

# Kubernetes
docs = {}
for f in sorted((deploy / "kubernetes").glob("*.yaml")):
    try:
        parsed = [d for d in yaml.safe_load_all(f.read_text()) if d]
        check(True, f"{f} parses ({len(parsed)} document(s))")
    except yaml.YAMLError as e:
        check(False, f"{f} parses: {e}")
        continue
    for d in parsed:
        docs[(d.get("kind"), d.get("metadata", {}).get("name"))] = d
kust = docs.get(("Kustomization", None))
check(kust is not None and all((deploy / "kubernetes" / r).exists() for r in kust["resources"]), "kustomization lists existing files")
cm = docs[("ConfigMap", "realtimed")]["data"]
secret = docs[("Secret", "realtimed-secrets")]["stringData"]
check_names("ConfigMap realtimed keys", set(cm))
check_names("Secret realtimed-secrets keys", set(secret))
check(set(cm) | set(secret) == names_in(" ".join(set(cm) | set(secret))), "ConfigMap and Secret hold only realtimed variables")
for k in ["CLERK_SECRET_KEY", "REALTIMED_SERVICE_KEYS"]:
    check(k in secret and k not in cm, f"{k} is in the Secret, not the ConfigMap")
check("REALTIMED_NATS_URL" in cm, "the NATS URL is configured")
dep = docs[("Deployment", "realtimed")]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
env_names = {e["name"] for e in c.get("env", [])}
check_names("Deployment env", env_names)
refs = {(k, v["name"]) for r in c["envFrom"] for k, v in r.items()}
check(refs == {("configMapRef", "realtimed"), ("secretRef", "realtimed-secrets")}, "Deployment takes the ConfigMap and the Secret")
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check(ports.get("http") == int(cm["REALTIMED_ADDR"].lstrip(":")), "containerPort http is REALTIMED_ADDR's port")
check(ports.get("metrics") == int(cm["REALTIMED_METRICS_ADDR"].lstrip(":")), "containerPort metrics is REALTIMED_METRICS_ADDR's port")
check(c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz",
      "liveness /healthz, readiness /readyz")
def seconds(v):
    m = re.fullmatch(r"(\d+)s", v)
    return int(m.group(1)) if m else None
d, s = seconds(cm["REALTIMED_DRAIN_DELAY"]), seconds(cm["REALTIMED_SHUTDOWN_TIMEOUT"])
rp = c["readinessProbe"]
check(d is not None and d >= 2 * rp["periodSeconds"] * rp["failureThreshold"], "drain delay covers two readiness periods")
check(pod["terminationGracePeriodSeconds"] > d + s, "terminationGracePeriodSeconds exceeds drain delay + shutdown timeout")
sc = c["securityContext"]
check(pod["securityContext"]["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"],
      "non-root, read-only root filesystem, no privilege escalation")
mount = {m["mountPath"] for m in c["volumeMounts"]}
check(env_names and any(e["name"] == "REALTIMED_DATA_DIR" and e["value"] in mount for e in c["env"]), "REALTIMED_DATA_DIR is a mounted volume")
svc = docs[("Service", "realtimed")]
check(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"] and svc["spec"]["ports"][0]["targetPort"] == "http",
      "Service selects the Deployment's pods on port http")

if failures:
    print(f"test-deploy: {len(failures)} failed", file=sys.stderr)
    sys.exit(1)
PY

if command -v systemd-analyze >/dev/null; then
  # verify needs the ExecStart binary: point it at the one just built.
  sed "s|^ExecStart=/usr/local/bin/realtimed|ExecStart=$ROOT/bin/realtimed|" deploy/systemd/realtimed.service > "$work/realtimed.service"
  out=$(systemd-analyze verify "$work/realtimed.service" 2>&1 || true)
  if [[ -n "$out" ]]; then echo "$out" >&2; echo "test-deploy: FAIL systemd-analyze verify" >&2; exit 1; fi
  echo "ok   systemd-analyze verify realtimed.service"
else
  echo "skip systemd-analyze (not installed)"
fi
if command -v kubectl >/dev/null; then
  kubectl kustomize deploy/kubernetes > "$work/all.yaml"
  echo "ok   kubectl kustomize deploy/kubernetes ($(grep -c '^kind:' "$work/all.yaml") objects)"
else
  echo "skip kubectl kustomize (not installed)"
fi
echo "test-deploy: passed"
