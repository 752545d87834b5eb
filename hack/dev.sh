#!/usr/bin/env bash
# make dev: a local control plane (the CRDs, RBAC and teleop-system applied
# by localcluster), and teleop itself: the console chat by default, the real bot when TELEGRAM_BOT_TOKEN is
# set. Everything started here stops when teleop exits (Ctrl-D or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TELEOP_TEST_KUBECONFIG:-}" ]; then
  exec hack/with-cluster.sh "$0" "$@"
fi
kubectl="${XDG_CACHE_HOME:-$HOME/.cache}/teleop/bin/kubectl"
cat <<MSG

  A local control plane is up. In another terminal:
    export KUBECONFIG=$KUBECONFIG
    $kubectl get teleapps -A      # or: kubectl get tapp
  It stops when you leave teleop.

MSG
if [ -n "${TELEGRAM_BOT_TOKEN:-}" ]; then
  bin/teleop run --namespace teleop-system --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0
else
  echo "  No TELEGRAM_BOT_TOKEN: chatting in this terminal. Try /help, /create web nginx:1.27 3, /list."
  bin/teleop console --namespace teleop-system --metrics-addr "" --health-addr ""
fi
