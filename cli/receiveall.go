package cli

import (
	"fmt"
	"path/filepath"
	"slices"
)

// receiveAll is `lex receive --all -o DIR`: every transfer waiting in the
// inbox is received into DIR/ID (so that two bundles never collide), one
// after the other with the other flags given; a failed one is reported and
// the rest still received.
func receiveAll(e *env, args, pos []string, dir, receipt string) error {
	if len(pos) > 0 {
		return usagef("--all takes no transfer ID")
	}
	if dir == "" {
		return usagef("-o DIR is required")
	}
	if receipt != "" {
		return usagef("--receipt FILE names one file: with --all each receipt is saved beside its DIR/ID")
	}
	_, c, err := e.dial()
	if err != nil {
		return err
	}
	ir, err := c.Inbox(e.ctx)
	c.Close()
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	flags := slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--all" || a == "-all" })
	failed := 0
	for _, t := range ir.Transfers {
		if !transferIDRE.MatchString(t.ID) {
			fmt.Fprintf(e.stderr, "lex: receive --all: skipping the malformed transfer ID %q\n", t.ID)
			failed++
			continue
		}
		one := append(slices.Clone(flags), "-o", filepath.Join(dir, t.ID), t.ID)
		if err := runReceive(e, one); err != nil {
			fmt.Fprintf(e.stderr, "lex: receive %s: %v\n", t.ID, err)
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("receive --all: %d of %d transfers failed (see above); run it again to retry them", failed, len(ir.Transfers))
	}
	if len(ir.Transfers) == 0 {
		fmt.Fprintln(e.stderr, "no transfers waiting")
	}
	return nil
}
