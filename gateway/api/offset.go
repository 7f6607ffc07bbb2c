package api

import (
	"fmt"
	"strconv"
)

// ParseOffset parses the value of an [HeaderUploadOffset] header: a byte offset
// written the one way [strconv.FormatInt] writes it (decimal digits, no sign, no
// leading zero, no space), at most the largest int64. Every other spelling of a
// number ("+5", "-0", "007", " 5", "5 ") is refused, so an offset has exactly one
// wire form and a proxy or a second parser cannot read another number from it.
func ParseOffset(v string) (int64, error) {
	if v == "" || len(v) > 19 || (v[0] == '0' && len(v) > 1) {
		return 0, fmt.Errorf("%s %.32q is not a byte offset (decimal digits, no sign or leading zero)", HeaderUploadOffset, v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, fmt.Errorf("%s %.32q is not a byte offset (decimal digits, no sign or leading zero)", HeaderUploadOffset, v)
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %.32q is larger than any byte offset", HeaderUploadOffset, v)
	}
	return n, nil
}
