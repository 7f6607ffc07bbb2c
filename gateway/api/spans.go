package api

import (
	"fmt"
	"strings"
)

// Parallel range uploads. A client that uploads over several connections at
// once sends each part of the ciphertext as a PATCH carrying
// [HeaderUploadOffset] (the part's first byte) and [HeaderUploadRangeEnd] (one
// past its last byte). Ranges may arrive in any order once the gateway holds
// the first bytes (the age header, checked before anything else is kept); a
// range at offset > 0 before then is a 409 whose Upload-Offset is 0. Replies to
// HEAD and PATCH carry the contiguous durable prefix in [HeaderUploadOffset]
// and the durable ranges beyond it in [HeaderUploadRanges], so a resumed
// upload re-sends only what is missing.

// HeaderUploadRangeEnd marks a PATCH as one range of a parallel upload: the
// offset one past the range's last byte. The body must carry exactly
// end − Upload-Offset bytes.
const HeaderUploadRangeEnd = "Upload-Range-End"

// HeaderUploadRanges lists, in replies to HEAD and PATCH, the durable ranges
// beyond the Upload-Offset prefix, as [FormatSpans] writes them. It is absent
// when there are none.
const HeaderUploadRanges = "Upload-Ranges"

// maxSpans bounds how many spans ParseSpans accepts, so a header cannot make
// a client allocate without limit.
const maxSpans = 4096

// Span is the half-open byte range [Start, End) of a ciphertext.
type Span struct {
	Start, End int64
}

// FormatSpans writes spans as "start-end" pairs (end exclusive) separated by
// commas, each number as [ParseOffset] reads it: "1048576-9437184,17825792-26214400".
func FormatSpans(spans []Span) string {
	var b strings.Builder
	for i, s := range spans {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d-%d", s.Start, s.End)
	}
	return b.String()
}

// ParseSpans parses the value of an [HeaderUploadRanges] header. The spans
// must be non-empty, sorted and disjoint, and no more than 4096; "" is no span.
func ParseSpans(v string) ([]Span, error) {
	if v == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > maxSpans {
		return nil, fmt.Errorf("%s lists %d ranges, more than %d", HeaderUploadRanges, len(parts), maxSpans)
	}
	spans := make([]Span, 0, len(parts))
	for _, p := range parts {
		a, b, ok := strings.Cut(p, "-")
		if !ok {
			return nil, fmt.Errorf("%s: %.32q is not start-end", HeaderUploadRanges, p)
		}
		start, err := ParseOffset(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", HeaderUploadRanges, err)
		}
		end, err := ParseOffset(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", HeaderUploadRanges, err)
		}
		if end <= start || (len(spans) > 0 && start <= spans[len(spans)-1].End) {
			return nil, fmt.Errorf("%s: %.32q is empty, unsorted or overlaps the range before", HeaderUploadRanges, p)
		}
		spans = append(spans, Span{start, end})
	}
	return spans, nil
}
