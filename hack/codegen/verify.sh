#!/usr/bin/env bash
# Fails when the committed deepcopy, CRD or clients differ from what
# update.sh generates: regenerates into a scratch copy and diffs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "${SCRATCH}"' EXIT

GENERATED=(operator/api deploy/crds operator/generated)
for path in go.mod go.sum hack/codegen "${GENERATED[@]}"; do
	mkdir -p "${SCRATCH}/$(dirname "${path}")"
	cp -a "${REPO}/${path}" "${SCRATCH}/${path}"
done

ROOT="${SCRATCH}" "${SCRATCH}/hack/codegen/update.sh"

drift=0
for path in "${GENERATED[@]}"; do
	diff -ruN "${REPO}/${path}" "${SCRATCH}/${path}" || drift=1
done
if [[ ${drift} -ne 0 ]]; then
	echo "generated code is out of date: run hack/codegen/update.sh and commit the result" >&2
	exit 1
fi
echo "generated code is up to date"
