package operator

import (
	"fmt"

	"k8s.io/client-go/tools/cache"
)

// cachedAs is an informer transform that caches each object as the state
// stateOf keeps of it. The cache may hand back what it already holds, so
// a state stays as it is.
func cachedAs[O, S any](stateOf func(*O) *S) cache.TransformFunc {
	return func(obj any) (any, error) {
		switch o := obj.(type) {
		case *O:
			return stateOf(o), nil
		case *S:
			return o, nil
		}
		return nil, fmt.Errorf("cache of %T: unexpected object of type %T", (*O)(nil), obj)
	}
}
