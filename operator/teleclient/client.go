package teleclient

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/rest"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/generated/clientset/versioned/scheme"
)

// NewClientset returns a clientset of teleop's API, like
// versioned.NewForConfig, whose JSON serializers find kinds with MetaFactory.
func NewClientset(cfg *rest.Config) (versioned.Interface, error) {
	config := rest.CopyConfig(cfg)
	gv := v1alpha1.SchemeGroupVersion
	config.GroupVersion = &gv
	config.APIPath = "/apis"
	generated := rest.CodecFactoryForGeneratedClient(scheme.Scheme, scheme.Codecs).WithoutConversion()
	config.NegotiatedSerializer = withMetaFactory(generated, scheme.Scheme)
	if config.UserAgent == "" {
		config.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientFor(config)
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", gv, err)
	}
	return versioned.New(client), nil
}

// negotiated is a NegotiatedSerializer with media types of its own.
type negotiated struct {
	runtime.NegotiatedSerializer
	mediaTypes []runtime.SerializerInfo
}

func (n negotiated) SupportedMediaTypes() []runtime.SerializerInfo { return n.mediaTypes }

// withMetaFactory returns base with its JSON serializers, plain, strict,
// pretty and streaming, rebuilt on MetaFactory.
func withMetaFactory(base runtime.NegotiatedSerializer, s *runtime.Scheme) runtime.NegotiatedSerializer {
	serializer := func(opts json.SerializerOptions) *json.Serializer {
		return json.NewSerializerWithOptions(MetaFactory{}, s, s, opts)
	}
	mediaTypes := slices.Clone(base.SupportedMediaTypes())
	for i, info := range mediaTypes {
		if info.MediaType != runtime.ContentTypeJSON {
			continue
		}
		plain := serializer(json.SerializerOptions{})
		info.Serializer = plain
		info.StrictSerializer = serializer(json.SerializerOptions{Strict: true})
		if info.PrettySerializer != nil {
			info.PrettySerializer = serializer(json.SerializerOptions{Pretty: true})
		}
		if info.StreamSerializer != nil {
			stream := *info.StreamSerializer
			stream.Serializer = plain
			info.StreamSerializer = &stream
		}
		mediaTypes[i] = info
	}
	return negotiated{NegotiatedSerializer: base, mediaTypes: mediaTypes}
}
