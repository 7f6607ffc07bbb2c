package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Delivering whole folders. A bundle's top-level entry (a file, or a folder
// with everything under it) that does not exist in the destination is moved
// there from the staging directory by one rename that never replaces
// (renameNoReplace): 20 renames deliver a production of 20,000 files in 20
// folders, instead of a link and an unlink per file. Only a top-level folder
// that already exists in the destination is merged into one file at a time,
// as before (delivery.run). Either way nothing has its final name before every
// check has passed, nothing is overwritten, and a failure half-way moves back
// what was moved.

// errRenameUnsupported is renameNoReplace's answer where the file system (or
// the system) has no rename that refuses to replace.
var errRenameUnsupported = errors.New("no rename without replace here")

// topLevel is the first element of a slash-separated path.
func topLevel(p string) string {
	top, _, _ := strings.Cut(p, "/")
	return top
}

// deliveryPlan splits ex into the top-level entries to move whole and the
// rest, to place one file at a time.
type deliveryPlan struct {
	whole []string        // top-level names absent from the destination
	merge map[string]bool // top-level folders that exist there
	rest  *extracted      // the entries under them
}

// planDelivery looks up each top-level entry of ex in the destination root.
// It fails, before anything is moved, when a staged file's name is taken or a
// staged folder's name is taken by something other than a folder.
func planDelivery(root *os.Root, dest string, ex *extracted) (*deliveryPlan, error) {
	isFile := map[string]bool{}
	var tops []string
	seen := map[string]bool{}
	add := func(p string, file bool) {
		top := topLevel(p)
		if file && top == p {
			isFile[top] = true
		}
		if !seen[top] {
			seen[top] = true
			tops = append(tops, top)
		}
	}
	for _, d := range ex.dirs {
		add(d, false)
	}
	for _, f := range ex.files {
		add(f.Path, true)
	}
	plan := &deliveryPlan{merge: map[string]bool{}}
	for _, top := range tops {
		fi, err := root.Lstat(top)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			plan.whole = append(plan.whole, top)
		case err != nil:
			return nil, fmt.Errorf("checking %s: %w", top, err)
		case isFile[top]:
			return nil, fmt.Errorf("%s already exists in %s: lex never overwrites; choose another -o directory", top, dest)
		case !fi.IsDir():
			return nil, fmt.Errorf("%s exists in the destination and is not a directory", top)
		default:
			plan.merge[top] = true
		}
	}
	plan.rest = ex.under(plan.merge)
	return plan, nil
}

// under is the part of ex whose top-level names are in tops.
func (ex *extracted) under(tops map[string]bool) *extracted {
	part := &extracted{manifest: ex.manifest}
	for _, d := range ex.dirs {
		if tops[topLevel(d)] {
			part.dirs = append(part.dirs, d)
		}
	}
	for _, f := range ex.files {
		if tops[topLevel(f.Path)] {
			part.files = append(part.files, f)
		}
	}
	return part
}

// moveWhole renames the top-level entries tops from the staging directory
// into the destination, never replacing. It returns the entries it could not
// move because the file system has no such rename; those go one file at a
// time.
func (d *delivery) moveWhole(stagingRel string, tops []string) ([]string, error) {
	if len(tops) == 0 {
		return nil, nil
	}
	var err error
	if d.stagingDir, err = d.root.Open(stagingRel); err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	if d.destDir, err = d.root.Open("."); err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	var left []string
	for _, top := range tops {
		err := renameNoReplace(d.stagingDir, d.destDir, top)
		switch {
		case err == nil:
			d.moved = append(d.moved, top)
		case errors.Is(err, errRenameUnsupported):
			left = append(left, top)
		case errors.Is(err, fs.ErrExist):
			return nil, fmt.Errorf("%s already exists: lex never overwrites", top)
		default:
			return nil, fmt.Errorf("moving %s into place: %w", top, err)
		}
	}
	return left, nil
}

// unmove moves the entries moveWhole moved back into the staging directory
// (which the caller removes).
func (d *delivery) unmove() {
	for i := len(d.moved) - 1; i >= 0; i-- {
		_ = renameNoReplace(d.destDir, d.stagingDir, d.moved[i])
	}
	d.moved = nil
}

// closeDirs closes the directories moveWhole opened.
func (d *delivery) closeDirs() {
	for _, f := range []*os.File{d.stagingDir, d.destDir} {
		if f != nil {
			f.Close()
		}
	}
}
