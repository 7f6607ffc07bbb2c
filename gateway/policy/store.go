package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// dataStore is the OPA store a policy set is evaluated against: its data
// documents, in OPA's in-memory store as OPA values, except the agreements
// (data.data.agreements), which it keeps as JSON text and turns into OPA
// values only when a policy reads them.
//
// The library never reads them while deciding: the engine puts each pair's
// agreements in the input (organisation.agreements of a counterparty). As
// OPA values, 10,000 agreements are some 350,000 heap objects that the
// garbage collector marks on every cycle while decisions run; as JSON text
// they are two. A policy that does read data.data.agreements (a custom rule,
// opa eval's way of working facts out) gets exactly what the data files
// hold, only more slowly.
type dataStore struct {
	storage.Store // the documents without data.data.agreements, as OPA values
	agreements    *jsonArray
	// matters are data.data.matters (the matter registry), kept like the
	// agreements: each matter as JSON text, decoded when a decision reads
	// it (data.data.matters[id]: one matter per decision). As OPA values,
	// 10,000 matters were over a million heap objects.
	matters *jsonObject

	// root and data are the documents at the root and at data.data, as
	// read: each member as JSON text (json.RawMessage). OPA evaluates such a
	// map as an object whose members become OPA values only when read
	// (ast.LazyObject), so that its rule index, which reads data.data whole
	// to look into data.data.x, decodes x alone. (A policy that turns
	// data.data whole into Go values, as json.marshal does, gets the JSON
	// text.)
	root, data map[string]any

	// lazyReads counts the reads that decode agreements or serve a document
	// containing them: none while the library decides (TestDecisionsLeaveAgreementsAside).
	lazyReads atomic.Int64
	// matterReads counts the reads that decode matters.
	matterReads atomic.Int64
}

// newDataStore returns the store of documents (as the loader read them; not
// modified).
// Matters read from it share the strings of strs (which may be nil).
func newDataStore(documents map[string]any, strs *terms) (*dataStore, error) {
	s := &dataStore{}
	data, _ := documents["data"].(map[string]any)
	list, hasAgreements := data["agreements"].([]any)
	registry, hasMatters := data["matters"].(map[string]any)
	if !hasAgreements && !hasMatters {
		s.Store = inmem.NewFromObjectWithOpts(documents, inmem.OptReturnASTValuesOnRead(true))
		return s, nil
	}
	var err error
	if hasAgreements {
		if s.agreements, err = newJSONArray(list); err != nil {
			return nil, fmt.Errorf("policy: data.agreements: %w", err)
		}
	}
	if hasMatters {
		if s.matters, err = newJSONObject(registry); err != nil {
			return nil, fmt.Errorf("policy: data.matters: %w", err)
		}
		s.matters.strs = strs
	}
	rest := make(map[string]any, len(data))
	for k, v := range data {
		if k != "agreements" && k != "matters" {
			rest[k] = v
		}
	}
	root := make(map[string]any, len(documents))
	for k, v := range documents {
		root[k] = v
	}
	root["data"] = rest
	// The store's OPA values, made here with their equal strings shared: the
	// 1,000 organisations repeat a few dozen jurisdictions, certifications,
	// site names, lists and days, and each string made on its own was two
	// heap objects more (some 25,000) for every collection to mark.
	values := make(map[string]any, len(root))
	shared := map[string]*ast.Term{}
	for k, v := range root {
		t, err := sharedValue(v, shared)
		if err != nil {
			return nil, fmt.Errorf("policy: data store: %s: %w", k, err)
		}
		values[k] = t.Value
	}
	s.Store = inmem.NewFromObjectWithOpts(values, inmem.OptReturnASTValuesOnRead(true))
	// The maps served for the root and data.data hold their members as JSON
	// text, like the agreements, not the documents as loaded: kept beside
	// the store's OPA values, those were as many heap objects again (46,000
	// for 1,000 organisations) for the garbage collector to mark on every
	// cycle.
	delete(root, "data") // served as s.data
	if s.root, err = jsonMembers(root); err != nil {
		return nil, err
	}
	if s.data, err = jsonMembers(rest); err != nil {
		return nil, err
	}
	s.root["data"] = s.data
	if hasAgreements {
		s.data["agreements"] = json.RawMessage(s.agreements.text)
	}
	if s.matters != nil {
		s.data["matters"] = json.RawMessage(s.matters.text)
	}
	return s, nil
}

// sharedValue is x (a document as loaded) as an OPA value, as
// ast.InterfaceToValue makes it, with one term for each distinct string
// (shared holds them).
func sharedValue(x any, shared map[string]*ast.Term) (*ast.Term, error) {
	str := func(s string) *ast.Term {
		t, ok := shared[s]
		if !ok {
			t = ast.StringTerm(s)
			shared[s] = t
		}
		return t
	}
	switch x := x.(type) {
	case string:
		return str(x), nil
	case map[string]any:
		o := ast.NewObjectWithCapacity(len(x))
		for k, v := range x {
			t, err := sharedValue(v, shared)
			if err != nil {
				return nil, err
			}
			o.Insert(str(k), t)
		}
		return ast.NewTerm(o), nil
	case []any:
		ts := make([]*ast.Term, len(x))
		for i, v := range x {
			t, err := sharedValue(v, shared)
			if err != nil {
				return nil, err
			}
			ts[i] = t
		}
		return ast.ArrayTerm(ts...), nil
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(v), nil
}

// jsonMembers returns the members of doc as JSON text.
func jsonMembers(doc map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(doc)+2)
	for k, v := range doc {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("policy: data store: %s: %w", k, err)
		}
		out[k] = json.RawMessage(b)
	}
	return out, nil
}

// agreementsPath is where the agreements are: data.data.agreements.
var agreementsPath = storage.Path{"data", "agreements"}

// mattersPath is where the matters are: data.data.matters.
var mattersPath = storage.Path{"data", "matters"}

// Read reads the document at path: from the JSON text for the agreements,
// the matters and the documents that contain them, from the in-memory store
// otherwise.
func (s *dataStore) Read(ctx context.Context, txn storage.Transaction, path storage.Path) (any, error) {
	if s.root == nil || len(path) > 0 && path[0] != agreementsPath[0] {
		return s.Store.Read(ctx, txn, path)
	}
	if len(path) > 1 {
		switch {
		case path[1] == mattersPath[1] && s.matters != nil:
			if len(path) == 2 {
				s.lazyReads.Add(1)
				return s.matters.value()
			}
			s.matterReads.Add(1)
			return s.matters.read(path, path[2:])
		case path[1] == agreementsPath[1] && s.agreements != nil:
			s.lazyReads.Add(1)
			return s.agreements.read(path, path[2:])
		}
		return s.Store.Read(ctx, txn, path)
	}
	s.lazyReads.Add(1)
	if len(path) == 0 {
		return s.root, nil
	}
	return s.data, nil
}

// Write refuses to write the agreements, the matters or a document that
// contains them (the engine never writes to its store).
func (s *dataStore) Write(ctx context.Context, txn storage.Transaction, op storage.PatchOp, path storage.Path, value any) error {
	if s.root != nil && (len(path) < 2 || path[0] == agreementsPath[0] && (path[1] == agreementsPath[1] || path[1] == mattersPath[1])) {
		return &storage.Error{Code: storage.WritesNotSupportedErr, Message: "policy: the agreements and matters are read-only: " + path.String()}
	}
	return s.Store.Write(ctx, txn, op, path, value)
}

// jsonObject is a JSON object kept as text: each member's value on its own,
// with the members read lately kept decoded (at most decodedMatters of them:
// a decision reads its matter, and a busy matter is read again and again).
type jsonObject struct {
	// members locates each member's value in text. The keys are slices of
	// one string and the values of one buffer: 10,000 matters are a handful
	// of heap objects rather than 20,000.
	members map[string]span
	text    []byte // the whole object, in key order
	strs    *terms // the strings decoded members share (nil: none)

	mu      sync.Mutex
	decoded map[string]ast.Value
}

// span is where a member's value is in jsonObject.text.
type span struct{ start, end int32 }

// decodedMatters bounds the decoded members a jsonObject keeps: the matters
// in use at one time. Each is some 50 heap objects that every garbage
// collection marks, and decoding one again costs a decision a few
// microseconds: 512 of them were 25,000 objects, 10,000 over a million.
const decodedMatters = 64

func newJSONObject(m map[string]any) (*jsonObject, error) {
	keys := sortedKeys(m)
	o := &jsonObject{members: make(map[string]span, len(m)), text: []byte{'{'}}
	all := strings.Join(keys, "")
	for i, k := range keys {
		if i > 0 {
			o.text = append(o.text, ',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", k, err)
		}
		b, err := json.Marshal(m[k])
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", k, err)
		}
		o.text = append(append(o.text, kb...), ':')
		start := len(o.text)
		o.text = append(o.text, b...)
		if len(o.text) > 1<<31-2 {
			return nil, fmt.Errorf("over 2 GiB of JSON")
		}
		key := all[:len(k)]
		all = all[len(k):]
		o.members[key] = span{int32(start), int32(len(o.text))}
	}
	o.text = append(o.text, '}')
	o.text = o.text[:len(o.text):len(o.text)]
	return o, nil
}

// member is the JSON text of member k.
func (o *jsonObject) member(k string) ([]byte, bool) {
	at, ok := o.members[k]
	if !ok {
		return nil, false
	}
	return o.text[at.start:at.end], true
}

// value is the whole object as an OPA value.
func (o *jsonObject) value() (ast.Value, error) { return decodeValue(o.text) }

// read reads the document at rest inside the object; path is the whole
// path (for errors).
func (o *jsonObject) read(path, rest storage.Path) (ast.Value, error) {
	o.mu.Lock()
	v, ok := o.decoded[rest[0]]
	o.mu.Unlock()
	if !ok {
		b, ok := o.member(rest[0])
		if !ok {
			return nil, notFound(path)
		}
		var err error
		if v, err = decodeJSON(b, o.strs); err != nil {
			return nil, err
		}
		o.mu.Lock()
		if o.decoded == nil || len(o.decoded) >= decodedMatters {
			o.decoded = make(map[string]ast.Value, decodedMatters) // start again: cheaper than tracking use
		}
		o.decoded[rest[0]] = v // OPA never changes a value it is given
		o.mu.Unlock()
	}
	return walk(v, path, rest[1:])
}

// jsonArray is a JSON array kept as text: its elements one after another
// in one buffer, as "[e0,e1,...]".
type jsonArray struct {
	text []byte
	ends []int32 // ends[i] is the offset in text just after element i
}

func newJSONArray(list []any) (*jsonArray, error) {
	a := &jsonArray{text: []byte{'['}, ends: make([]int32, len(list))}
	for i, v := range list {
		if i > 0 {
			a.text = append(a.text, ',')
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		a.text = append(a.text, b...)
		if len(a.text) > 1<<31-1 {
			return nil, fmt.Errorf("over 2 GiB of JSON")
		}
		a.ends[i] = int32(len(a.text))
	}
	a.text = append(a.text, ']')
	a.text = a.text[:len(a.text):len(a.text)]
	return a, nil
}

// value is the whole array as an OPA value.
func (a *jsonArray) value() (ast.Value, error) { return decodeValue(a.text) }

// read reads the document at rest inside the array; path is the whole path
// (for errors).
func (a *jsonArray) read(path, rest storage.Path) (ast.Value, error) {
	if len(rest) == 0 {
		return a.value()
	}
	i, err := strconv.Atoi(rest[0])
	if err != nil || i < 0 || i >= len(a.ends) || rest[0] != strconv.Itoa(i) {
		return nil, notFound(path)
	}
	start := int32(1)
	if i > 0 {
		start = a.ends[i-1] + 1
	}
	v, err := decodeValue(a.text[start:a.ends[i]])
	if err != nil {
		return nil, err
	}
	return walk(v, path, rest[1:])
}

// walk reads the document at rest inside v; path is the whole path (for
// errors).
func walk(v ast.Value, path, rest storage.Path) (ast.Value, error) {
	for _, k := range rest {
		switch x := v.(type) {
		case ast.Object:
			t := x.Get(ast.StringTerm(k))
			if t == nil {
				return nil, notFound(path)
			}
			v = t.Value
		case *ast.Array:
			j, err := strconv.Atoi(k)
			if err != nil || j < 0 || j >= x.Len() || k != strconv.Itoa(j) {
				return nil, notFound(path)
			}
			v = x.Elem(j).Value
		default:
			return nil, notFound(path)
		}
	}
	return v, nil
}

func decodeValue(text []byte) (ast.Value, error) {
	var x any
	if err := util.UnmarshalJSON(text, &x); err != nil {
		return nil, &storage.Error{Code: storage.InternalErr, Message: "policy: data store: " + err.Error()}
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		return nil, &storage.Error{Code: storage.InternalErr, Message: "policy: data store: " + err.Error()}
	}
	return v, nil
}

func notFound(path storage.Path) error {
	return &storage.Error{Code: storage.NotFoundErr, Message: path.String() + ": document does not exist"}
}
