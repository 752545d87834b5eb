# The local control plane's binaries (hack/cluster/README.md). Included by the
# top-level Makefile.

# Where hack/cluster/build.sh puts etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl and kwok; test/cluster
# reads the same place (TELEOP_CLUSTER_BIN_DIR overrides both).
CLUSTER_BIN_DIR ?= $(or $(TELEOP_CLUSTER_BIN_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/teleop/bin)
KUBECTL ?= $(CLUSTER_BIN_DIR)/kubectl
KWOK ?= $(CLUSTER_BIN_DIR)/kwok

.PHONY: cluster-bin
cluster-bin: ## build the control-plane binaries into $(CLUSTER_BIN_DIR) (cached; a cold build takes ~7 min)
	TELEOP_CLUSTER_BIN_DIR=$(CLUSTER_BIN_DIR) hack/cluster/build.sh

HELM ?= $(CLUSTER_BIN_DIR)/helm
HELM_VERSION ?= v3.22.0

# helm renders deploy/helm/teleop in the deploy tests; built from the module proxy.
$(HELM):
	GOBIN=$(CLUSTER_BIN_DIR) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

.PHONY: helm-bin
helm-bin: $(HELM)

REGISTRY ?= $(CLUSTER_BIN_DIR)/registry
REGISTRY_VERSION ?= v3.1.2

# The CNCF distribution registry receives the image in hack/image's test;
# built from the module proxy.
$(REGISTRY):
	GOBIN=$(CLUSTER_BIN_DIR) $(GO) install github.com/distribution/distribution/v3/cmd/registry@$(REGISTRY_VERSION)

.PHONY: registry-bin
registry-bin: $(REGISTRY)

# The real node (test/cluster RealNode, make node-test): kubelet from this
# module at the control plane's version; containerd, runc, the CNI plugins,
# iptables and iproute2 from Debian's apt.
.PHONY: node-bin node-deps
node-bin: ## build kubelet into $(CLUSTER_BIN_DIR) (cached)
	TELEOP_CLUSTER_BIN_DIR=$(CLUSTER_BIN_DIR) hack/cluster/build.sh kubelet

NODE_APT_PACKAGES := containerd runc containernetworking-plugins iptables iproute2

node-deps: ## apt-get install what the real node runs (root)
	@dpkg -s $(NODE_APT_PACKAGES) >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(NODE_APT_PACKAGES); }
