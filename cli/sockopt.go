package cli

import (
	"fmt"

	"github.com/lexgate/lexgate/gateway/tcptune"
)

// tcpControl tunes every TCP socket lex dials, before it connects (see tcptune).
var tcpControl = tcptune.Control

// tcpTuning describes what tcpControl obtains on this host, for -v.
func tcpTuning() string {
	cc, snd := tcptune.Describe(nil)
	s := "congestion control " + cc
	if cc != tcptune.Congestion {
		s += fmt.Sprintf(" (%s not available to us)", tcptune.Congestion)
	}
	return s + ", send buffer " + snd
}
