"""A small Kopf operator doing teleop's core job, for the side-by-side benchmark.

For each TeleApp it creates the Deployment (or patches its replicas and image),
and writes its result to the TeleApp's status in the patch Kopf makes after the
handler. Run by test/bench's BenchmarkKopf (hack/kopf-bench.sh) from Kopf's
source, with Debian's python3 packages:

    PYTHONPATH=<kopf source> KUBECONFIG=<file> python3 operator.py

Two choices follow from running Kopf 1.44.6 on Debian's packages (see the
peers README): login builds an aiohttp session of its own, and the script
calls kopf.run instead of the `kopf run` command line. Progress is kept in
annotations only, because the TeleApp's structural schema would prune
Kopf's status.kopf; the result goes to fields the schema has.
"""

import logging

import aiohttp
import kopf
import kubernetes

GROUP, VERSION, PLURAL = "teleop.io", "v1alpha1", "teleapps"
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

apps_api = None  # kubernetes.client.AppsV1Api, set at startup


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    global apps_api
    kubernetes.config.load_kube_config()
    apps_api = kubernetes.client.AppsV1Api()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    settings.posting.level = logging.INFO  # Kopf's default, stated


@kopf.on.login()
async def login(settings: kopf.OperatorSettings, **_):
    info = kopf.login_with_kubeconfig(settings=settings)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        aiohttp_session=session,
    )


def deployment(name, namespace, spec, body):
    labels = {NAME_LABEL: name, MANAGED_BY_LABEL: "kopf-bench"}
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": spec.get("replicas", 1),
            "selector": {"matchLabels": {NAME_LABEL: name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": spec["image"]}]},
            },
        },
    }
    kopf.adopt(manifest, owner=body)
    return manifest


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile(name, namespace, spec, meta, body, patch, **_):
    manifest = deployment(name, namespace, spec, body)
    try:
        apps_api.create_namespaced_deployment(namespace, manifest, _preload_content=False)
        action = "created"
    except kubernetes.client.ApiException as e:
        if e.status != 409:
            raise
        apps_api.patch_namespaced_deployment(
            name, namespace, {"spec": manifest["spec"]}, _preload_content=False)
        action = "patched"
    patch.status["observedGeneration"] = meta.get("generation")
    patch.status["message"] = f"Deployment {action} with {manifest['spec']['replicas']} replicas"


if __name__ == "__main__":
    kopf.configure(verbose=False)  # INFO, as `kopf run` logs by default
    kopf.run(standalone=True, clusterwide=True)
