//go:build !crashpoints

package crashpoint

// Enabled reports whether the binary was built with crash points.
const Enabled = false

// Hit does nothing: this binary was built without the "crashpoints" tag.
func Hit(name string) {}
