package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// fieldManager owns what the test helpers apply.
const fieldManager = "teleop-test-cluster"

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs server-side applies every YAML in dir and waits until each
// CustomResourceDefinition among them is Established and its resources can be
// listed, so the first create of a new kind does not race the API server.
func InstallCRDs(ctx context.Context, cfg *rest.Config, dir string) error {
	objs, err := ApplyDir(ctx, cfg, dir)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	for _, obj := range objs {
		if obj.GroupVersionKind().GroupKind() != (schema.GroupKind{Group: crdResource.Group, Kind: "CustomResourceDefinition"}) {
			continue
		}
		if err := waitCRDServed(ctx, dyn, obj.GetName()); err != nil {
			return err
		}
	}
	return nil
}

// ApplyDir server-side applies every object of every .yaml/.yml file in dir
// (in name order) and returns them as applied. Namespaced objects without a
// namespace go to "default"; a namespace an object names is created when
// missing, so a manifest need not carry its Namespace.
func ApplyDir(ctx context.Context, cfg *rest.Config, dir string) ([]*unstructured.Unstructured, error) {
	objs, err := readManifests(dir)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	applied := make([]*unstructured.Unstructured, 0, len(objs))
	ensured := map[string]bool{}
	for _, obj := range objs {
		if ns := obj.GetNamespace(); ns != "" && !ensured[ns] {
			if err := ensureNamespace(ctx, dyn, ns); err != nil {
				return nil, err
			}
			ensured[ns] = true
		}
		out, err := applyObject(ctx, dyn, mapper, obj)
		if err != nil {
			return nil, err
		}
		applied = append(applied, out)
	}
	return applied, nil
}

func applyObject(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		// A kind defined by a CRD applied just before: rediscover once.
		mapper.Reset()
		mapping, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("apply %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	resource := dyn.Resource(mapping.Resource)
	var client dynamic.ResourceInterface = resource
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(metav1.NamespaceDefault)
		}
		client = resource.Namespace(obj.GetNamespace())
	}
	out, err := client.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return nil, fmt.Errorf("apply %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	return out, nil
}

func ensureNamespace(ctx context.Context, dyn dynamic.Interface, name string) error {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	_, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).
		Apply(ctx, name, ns, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("ensure namespace %s: %w", name, err)
	}
	return nil
}

// readManifests decodes every document of every YAML file in dir, except
// kustomize's kustomization.yaml, which describes the others.
func readManifests(dir string) ([]*unstructured.Unstructured, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	var objs []*unstructured.Unstructured
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") || strings.TrimSuffix(e.Name(), ext) == "kustomization" {
			continue
		}
		fileObjs, err := readManifestFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		objs = append(objs, fileObjs...)
	}
	return objs, nil
}

func readManifestFile(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	defer f.Close()
	decoder := yaml.NewYAMLOrJSONDecoder(f, 4096)
	var objs []*unstructured.Unstructured
	for {
		var doc map[string]any
		err := decoder.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		if len(doc) == 0 {
			continue // an empty document between separators
		}
		obj := &unstructured.Unstructured{Object: doc}
		if obj.GetKind() == "" || obj.GetName() == "" {
			return nil, fmt.Errorf("decode %s: a document without kind or metadata.name", path)
		}
		objs = append(objs, obj)
	}
}

// waitCRDServed waits until the CRD is Established and a list of its
// resource succeeds in every served version.
func waitCRDServed(ctx context.Context, dyn dynamic.Interface, name string) error {
	var lastProblem string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		lastProblem = crdServedProblem(ctx, dyn, name)
		return lastProblem == "", nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not served: %w (%s)", name, err, lastProblem)
	}
	return nil
}

// crdServedProblem names what keeps the CRD from being usable, or is empty.
func crdServedProblem(ctx context.Context, dyn dynamic.Interface, name string) string {
	crd, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	established := slices.ContainsFunc(conditions, func(c any) bool {
		m, _ := c.(map[string]any)
		return m["type"] == "Established" && m["status"] == "True"
	})
	if !established {
		return "not Established yet"
	}
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		version, _ := v.(map[string]any)
		if served, _ := version["served"].(bool); !served {
			continue
		}
		versionName, _ := version["name"].(string)
		gvr := schema.GroupVersionResource{Group: group, Version: versionName, Resource: plural}
		if _, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return fmt.Sprintf("list %s: %v", strings.Join([]string{plural, versionName, group}, "."), err)
		}
	}
	return ""
}
