package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// result is a decision as the policy returns it.
type result struct {
	Allow       bool
	Reasons     []Reason
	Obligations Obligations
}

// parseResult checks the shape of a decision document: allow must be a
// boolean, reasons a list of {code, message} with a code, obligations
// non-negative numbers and an RFC 3339 time (or ""). A refusal without
// reasons gets one.
func parseResult(v any) (result, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return result{}, err
	}
	var raw struct {
		Allow       *bool    `json:"allow"`
		Reasons     []Reason `json:"reasons"`
		Obligations struct {
			RetentionDays int    `json:"retention_days"`
			MaxDownloads  int    `json:"max_downloads"`
			ExpiresAt     string `json:"expires_at"`
		} `json:"obligations"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return result{}, err
	}
	if raw.Allow == nil {
		return result{}, errors.New("allow is missing")
	}
	for _, r := range raw.Reasons {
		if r.Code == "" {
			return result{}, errors.New("a reason has no code")
		}
	}
	o := raw.Obligations
	if o.RetentionDays < 0 || o.MaxDownloads < 0 {
		return result{}, errors.New("negative obligations")
	}
	res := result{Allow: *raw.Allow, Reasons: raw.Reasons, Obligations: Obligations{RetentionDays: o.RetentionDays, MaxDownloads: o.MaxDownloads}}
	if o.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, o.ExpiresAt)
		if err != nil {
			return result{}, fmt.Errorf("expires_at: %w", err)
		}
		res.Obligations.ExpiresAt = t
	}
	if res.Reasons == nil {
		res.Reasons = []Reason{}
	}
	if !res.Allow && len(res.Reasons) == 0 {
		res.Reasons = []Reason{{Code: CodeUndefined, Message: "the policy refused without giving a reason"}}
	}
	return res, nil
}
