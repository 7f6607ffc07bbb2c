// Package crashtest holds lexgate's crash-consistency and disk-full tests. It
// has no code of its own besides this page; everything is in its tests, which
// build the lexgate binary with the "crashpoints" build tag, run it as a child
// process on 127.0.0.1 and drive it with the real lex client (cli.Client):
//
//   - TestCrashPoints kills the gateway (SIGKILL, from inside, see
//     gateway/internal/crashpoint) at each named step of an upload and of an
//     acknowledgement, restarts it on the same data directory and checks the
//     invariant: every upload acknowledged to the client is deliverable byte
//     for byte, nothing incomplete is ever in an inbox, the upload resumes from
//     its durable offset, and the audit log agrees with the store.
//   - TestCrashRanges kills it while it writes one range of a parallel upload
//     (after the pwrite; after the fsync, before the range is recorded): every
//     acknowledged range, also one beyond the contiguous prefix, is held after
//     the restart, the unacknowledged one is missing, and re-sending only it
//     completes the upload.
//   - TestRandomKills kills it from outside at seeded random moments while
//     several uploads run, and checks the same invariant after each restart,
//     on the embedded default and on the cluster backends (PostgreSQL, the
//     ciphertext in a versitygw bucket, the audit log in MariaDB), where the
//     bucket is also read directly: only whole uploads are objects, and
//     every ready transfer has its object.
//     LEXGATE_CRASH_ITERATIONS sets how many kills (default 3) and
//     LEXGATE_CRASH_SEED the seed (default the time, logged).
//   - TestDiskFull runs the gateway on a small tmpfs and fills it: an upload
//     (also one range of a parallel upload) and an audit append that meet
//     ENOSPC are refused with a clear error and
//     no acknowledgement, nothing is half-delivered, and intake resumes once
//     space is freed. It needs mount(2) (root); it skips without it, and fails
//     under CI=true.
//   - TestServeHeapFloor checks the process-wide setting lexgate serve makes
//     for the garbage collector (gc.min_heap_mib), on its /metrics.
package crashtest
