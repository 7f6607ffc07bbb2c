// Package crashpoint marks the places in the gateway where a crash test kills
// the process, so a test can stop a real lexgate at an exact step of an upload
// (after the bytes of a chunk are written but not synced, between the rename of
// a complete upload and its commit, between the commit and the audit append…)
// and check that a restart on the same data loses nothing and shows nothing
// half-done.
//
// Without the build tag "crashpoints", [Hit] is an empty function that the
// compiler inlines away: a production binary has no crash points. Built with
//
//	go build -tags crashpoints ./cmd/lexgate
//
// the process kills itself with SIGKILL (no deferred function, no flush, like
// a power cut as far as the process is concerned) when $LEXGATE_CRASH_AT names
// the point it reaches. "NAME#N" kills at the Nth time NAME is reached (N ≥ 1),
// so a test can let the first chunks of an upload through. Just before dying
// the process writes "crashpoint: NAME" on standard error, so the test can tell
// which point killed it.
//
// The names in use are listed in [Points]; a test that names another point
// would never crash, so it should check its name against that list.
package crashpoint

// Points are the crash points the gateway calls [Hit] with, in the order an
// upload reaches them. A streamed upload (created with its hash pending) goes
// through the store.* points up to store.upload.synced with each chunk, then
// store.finish.* and transfer.seal.* when it is sealed.
var Points = []string{
	"transfer.create.committed",     // a transfer is recorded in the store, before the audit append
	"transfer.upload.write",         // a chunk arrived, before the store writes a byte of it
	"store.upload.mid_chunk",        // part of a chunk is written to the .part file, not yet synced
	"store.upload.synced",           // a chunk is fsynced, its offset not yet committed
	"store.range.written",           // a parallel upload's range is written (pwrite), not yet synced
	"store.range.synced",            // the range is fsynced, not yet recorded
	"store.finish.verified",         // the whole upload's SHA-256 matched, before the rename to .age
	"store.finish.published",        // renamed to .age, before the metadata says ready
	"transfer.upload.committed",     // the transfer is ready in the store, before the audit append
	"transfer.upload.audited",       // the upload completion is in the audit log, before the reply
	"transfer.seal.committed",       // a streamed upload is sealed (ready) in the store, before the audit append
	"transfer.seal.audited",         // the sealed upload's completion is logged, before the reply
	"transfer.ack.committed",        // a recipient's ack is in the store, before the audit append
	"transfer.quarantine.committed", // an upload whose hash did not match is quarantined, before the audit append
}
