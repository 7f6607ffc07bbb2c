package main

import (
	"context"
	"path/filepath"
	"time"
)

// benchAge builds the stock age CLI at the version go.mod pins, makes an X25519 and
// a post-quantum hybrid (ML-KEM-768 + X25519) key pair with age-keygen, and times
// encrypting the test file to each recipient, the ciphertext going to /dev/null.
func (b *bench) benchAge(ctx context.Context) error {
	tools, err := mkdir(b.path("age"))
	if err != nil {
		return err
	}
	b.logf("building the pinned age and age-keygen")
	goBin, err := lookPath("go")
	if err != nil {
		return err
	}
	if _, err := runTimed(ctx, "", goBin, "build", "-o", tools+"/",
		"filippo.io/age/cmd/age", "filippo.io/age/cmd/age-keygen"); err != nil {
		return err
	}
	age, keygen := filepath.Join(tools, "age"), filepath.Join(tools, "age-keygen")

	kinds := []struct {
		row  string
		name string
		args []string
	}{
		{rowAgeX25519, "x25519", nil},
		{rowAgePQ, "pq", []string{"-pq"}},
	}
	recipients := map[string]string{}
	for _, k := range kinds {
		id := filepath.Join(tools, k.name+".key")
		args := append(append([]string{}, k.args...), "-o", id)
		if _, err := runTimed(ctx, "", keygen, args...); err != nil {
			return err
		}
		pub := filepath.Join(tools, k.name+".pub")
		if _, err := runTimed(ctx, "", keygen, "-y", "-o", pub, id); err != nil {
			return err
		}
		recipients[k.row] = pub
	}
	for i := range b.opt.runs {
		for _, k := range kinds {
			// No -o: the ciphertext goes to stdout, which is /dev/null.
			settle()
			r, err := runDiscard(ctx, age, "-R", recipients[k.row], b.file)
			if err != nil {
				return err
			}
			b.record(k.row, i, r.wall, r.cpu)
		}
	}
	return nil
}

// record stores one run of a row and prints it.
func (b *bench) record(row string, run int, wall, cpu time.Duration) {
	r := b.rep.row(row)
	r.walls = append(r.walls, wall)
	r.cpus = append(r.cpus, cpu)
	b.logf("%-22s run %d/%d: %7.2f s %8.1f MB/s", row, run+1, b.opt.runs, wall.Seconds(), mbps(b.opt.size, wall))
}
