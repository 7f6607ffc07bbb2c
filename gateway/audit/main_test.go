package audit_test

import (
	"io"
	"os"
	"testing"

	"k8s.io/klog/v2"
)

// TestMain silences tessera's klog lines, which would interleave with benchmark output.
func TestMain(m *testing.M) {
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	os.Exit(m.Run())
}
