#!/usr/bin/env bash
# Regenerates everything derived from operator/api/v1alpha1: deepcopy, the CRD
# in deploy/crds and the typed clientset, listers and informers in
# operator/generated. Run from anywhere; ROOT overrides the tree written to
# (verify.sh points it at a scratch copy).
set -euo pipefail

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
CODEGEN_VERSION="${CODEGEN_VERSION:-v0.36.3}"
CONTROLLER_GEN_VERSION="v0.23.0"
BIN="${XDG_CACHE_HOME:-$HOME/.cache}/teleop/bin"
MODULE="github.com/teleop/teleop"
API_PKG="${MODULE}/operator/api/v1alpha1"
OUT_PKG="${MODULE}/operator/generated"
HEADER="${ROOT}/hack/codegen/boilerplate.go.txt"

cd "${ROOT}"

controller_gen="${BIN}/controller-gen"
if ! "${controller_gen}" --version 2>/dev/null | grep -q "${CONTROLLER_GEN_VERSION}"; then
	GOBIN="${BIN}" go install "sigs.k8s.io/controller-tools/cmd/controller-gen@${CONTROLLER_GEN_VERSION}"
fi

gen() { go run "k8s.io/code-generator/cmd/$1@${CODEGEN_VERSION}" "${@:2}"; }

"${controller_gen}" object paths=./operator/api/...
"${controller_gen}" crd paths=./operator/api/... output:crd:artifacts:config=deploy/crds

rm -rf operator/generated
gen client-gen \
	--go-header-file "${HEADER}" \
	--clientset-name versioned \
	--input-base "" \
	--input "${API_PKG}" \
	--output-dir operator/generated/clientset \
	--output-pkg "${OUT_PKG}/clientset"
gen lister-gen \
	--go-header-file "${HEADER}" \
	--output-dir operator/generated/listers \
	--output-pkg "${OUT_PKG}/listers" \
	"${API_PKG}"
gen informer-gen \
	--go-header-file "${HEADER}" \
	--versioned-clientset-package "${OUT_PKG}/clientset/versioned" \
	--listers-package "${OUT_PKG}/listers" \
	--output-dir operator/generated/informers \
	--output-pkg "${OUT_PKG}/informers" \
	"${API_PKG}"
