package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// virtualCache is OPA's cache of the rules and functions evaluated during
// one decision (topdown.VirtualCache), kept in memory that the next
// decision reuses: OPA's own makes a tree of hash maps for each decision,
// about a tenth of a decision's allocations. Each evaluation takes one from
// virtualCaches and gives it back when it is done; a cache is never used by
// two evaluations at once.
//
// Entries are nodes in one slice, each found from its parent through one
// Go map keyed by (parent, hash of the key term), a chain of nodes for
// terms with the same hash. A frame (Push, for OPA's `with`) is a new root
// node; Pop drops it, and its nodes become unreachable.
type virtualCache struct {
	nodes  []vnode
	index  map[vkey]int32
	frames []int32 // root node of each frame, the active one last
}

// vnode is one element of a reference in the cache.
type vnode struct {
	key       *ast.Term
	value     *ast.Term
	parent    int32 // -1 for a frame's root
	next      int32 // next node with the same parent and key hash, -1 for none
	undefined bool
}

// vkey finds the first child of parent whose key has this hash.
type vkey struct {
	parent int32
	hash   int
}

// maxPooledNodes bounds the nodes of a cache kept for reuse: a policy that
// caches more in one decision gets a new cache next time.
const maxPooledNodes = 1 << 14

var virtualCaches = sync.Pool{New: func() any {
	return &virtualCache{index: make(map[vkey]int32, 256), nodes: make([]vnode, 0, 256)}
}}

// getVirtualCache returns an empty cache with one frame.
func getVirtualCache() *virtualCache {
	c := virtualCaches.Get().(*virtualCache)
	c.Push()
	return c
}

// release empties c (dropping its references to the decision's values) and
// returns it to the pool.
func (c *virtualCache) release() {
	if len(c.nodes) > maxPooledNodes {
		return
	}
	clear(c.nodes)
	c.nodes = c.nodes[:0]
	clear(c.index)
	c.frames = c.frames[:0]
	virtualCaches.Put(c)
}

var _ topdown.VirtualCache = (*virtualCache)(nil)

// Push implements topdown.VirtualCache.
func (c *virtualCache) Push() {
	c.frames = append(c.frames, c.newNode(nil, -1))
}

// Pop implements topdown.VirtualCache.
func (c *virtualCache) Pop() {
	c.frames = c.frames[:len(c.frames)-1]
}

func (c *virtualCache) newNode(key *ast.Term, parent int32) int32 {
	c.nodes = append(c.nodes, vnode{key: key, parent: parent, next: -1})
	return int32(len(c.nodes) - 1)
}

// child returns the child of parent with key k, or -1.
func (c *virtualCache) child(parent int32, k *ast.Term, hash int) int32 {
	i, ok := c.index[vkey{parent, hash}]
	if !ok {
		return -1
	}
	for ; i >= 0; i = c.nodes[i].next {
		if c.nodes[i].key.Equal(k) {
			return i
		}
	}
	return -1
}

// Get implements topdown.VirtualCache: the value cached for ref; nil and
// true when ref is cached as undefined; nil and false when it is not cached.
func (c *virtualCache) Get(ref ast.Ref) (*ast.Term, bool) {
	n := c.frames[len(c.frames)-1]
	for _, k := range ref {
		if n = c.child(n, k, k.Hash()); n < 0 {
			return nil, false
		}
	}
	if c.nodes[n].undefined {
		return nil, true
	}
	return c.nodes[n].value, false
}

// Put implements topdown.VirtualCache; a nil value caches ref as undefined.
func (c *virtualCache) Put(ref ast.Ref, value *ast.Term) {
	n := c.frames[len(c.frames)-1]
	for _, k := range ref {
		h := k.Hash()
		next := c.child(n, k, h)
		if next < 0 {
			next = c.newNode(k, n)
			key := vkey{n, h}
			if first, ok := c.index[key]; ok {
				c.nodes[next].next = first
			}
			c.index[key] = next
		}
		n = next
	}
	if value != nil {
		c.nodes[n].value = value
	} else {
		c.nodes[n].undefined = true
	}
}

// Keys implements topdown.VirtualCache: the references cached with a value
// in the active frame.
func (c *virtualCache) Keys() []ast.Ref {
	root := c.frames[len(c.frames)-1]
	var keys []ast.Ref
	for i := range c.nodes {
		if c.nodes[i].value == nil {
			continue
		}
		var ref ast.Ref
		n := int32(i)
		for ; c.nodes[n].parent >= 0; n = c.nodes[n].parent {
			ref = append(ref, c.nodes[n].key)
		}
		if n != root {
			continue
		}
		for l, r := 0, len(ref)-1; l < r; l, r = l+1, r-1 {
			ref[l], ref[r] = ref[r], ref[l]
		}
		keys = append(keys, ref)
	}
	return keys
}
