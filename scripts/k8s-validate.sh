#!/usr/bin/env bash
# Validates deploy/ offline: every manifest against the Kubernetes OpenAPI schemas bundled in the
# PyPI package kubernetes-validate (pinned; strict: unknown fields fail), for the oldest and the
# newest Kubernetes version this deployment targets; kustomization.yaml lists only files that
# exist and every manifest is listed (secret.example.yaml excepted, on purpose); and the BFF's
# grace period exceeds its preStop pause plus its shutdown timeout.
# The tool is installed once into target/k8s-validate-venv (a virtualenv, nothing system-wide).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=1.37.0
venv=target/k8s-validate-venv
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qF "$version"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$version"
fi

manifests=()
for f in deploy/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
for k8s in 1.28.0 1.35.0; do
    "$venv/bin/kubernetes-validate" --quiet --strict --kubernetes-version "$k8s" "${manifests[@]}"
    echo "deploy/: ${#manifests[@]} files valid against Kubernetes $k8s (strict)"
done

"$venv/bin/python" - <<'EOF'
import pathlib, sys, yaml

deploy = pathlib.Path("deploy")
kust = yaml.safe_load((deploy / "kustomization.yaml").read_text())
listed = set(kust["resources"])
present = {p.name for p in deploy.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
problems = [f"kustomization.yaml lists missing {f}" for f in sorted(listed - present)]
problems += [f"{f} is not listed in kustomization.yaml" for f in sorted(present - listed)]

dep = yaml.safe_load((deploy / "bff-deployment.yaml").read_text())
pod = dep["spec"]["template"]["spec"]
bff = next(c for c in pod["containers"] if c["name"] == "bff")
env = {e["name"]: e.get("value") for e in bff["env"]}
shutdown = int(env.get("CLOAKROOM_BFF__SHUTDOWN_TIMEOUT_SECS") or 10)
pre_stop = bff["lifecycle"]["preStop"]["exec"]["command"]
pause = int(pre_stop[1]) if pre_stop[0] == "sleep" else 0
grace = pod["terminationGracePeriodSeconds"]
if grace <= pause + shutdown:
    problems.append(f"terminationGracePeriodSeconds {grace} <= preStop {pause} s + shutdown timeout {shutdown} s")
if dep["spec"]["replicas"] < 2:
    problems.append("the BFF should run at least 2 replicas")

for p in problems:
    print(f"error: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"deploy/: kustomization complete; grace period {grace} s > preStop {pause} s + shutdown {shutdown} s")
EOF
