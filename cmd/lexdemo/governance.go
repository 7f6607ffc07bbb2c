package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Matters of the shipped policy data the governance steps use.
const (
	// noConsentMatter's client has not consented to offshore work.
	noConsentMatter = "HL-2026-0090"
	// shortMatter keeps its transfers for two seconds (retention_seconds).
	shortMatter = "HL-2026-0099"
)

// governance shows what the policy's obligations and the firm's records do:
// a send refused because the client never consented to offshore review, a
// legal hold keeping a transfer past its expiry, and, once the hold is
// lifted, the sweeper's deletion with a destruction certificate that
// verifies offline.
func (d *demo) governance(ctx context.Context, aliceCfg, teamCfg, bundle string) error {
	d.say("Matter %s: the client never consented to offshore review, so sending it to Manila is refused", noConsentMatter)
	_, code, err := d.cmd(ctx, "lex", "--config", aliceCfg, "send", "--to", team, "--matter", noConsentMatter, bundle)
	if err != nil {
		return err
	}
	if code != 3 {
		return fmt.Errorf("the send without consent exited %d, want 3 (refused by policy)", code)
	}
	if !strings.Contains(d.lastOutput, "consent.missing") {
		return fmt.Errorf("the send without consent was refused, but not for consent.missing")
	}
	fmt.Fprintln(d.out, "   ✓ refused: the matter's records, not the sender's flags, decide")

	d.say("A records manager places a legal hold on matter %s (its transfers are kept 2 seconds)", shortMatter)
	if _, err := d.must(ctx, "lex", "--config", aliceCfg, "hold", "place", "--matter", shortMatter,
		"--reason", "litigation hold: Example Client AG v. Nordwind, 26-cv-0099"); err != nil {
		return err
	}
	out, err := d.must(ctx, "lex", "--config", aliceCfg, "send", "--to", team, "--matter", shortMatter, bundle)
	if err != nil {
		return err
	}
	m := sentRE.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("lex send printed no transfer id: %q", out)
	}
	id := m[1]

	d.say("Its retention expires; the sweeper (every second) keeps it: the matter is on hold")
	if err := d.waitLog(ctx, regexp.MustCompile(`"msg":"sweep".*"held":[1-9]`), 20*time.Second); err != nil {
		return err
	}
	list, err := d.must(ctx, "lex", "--config", aliceCfg, "hold", "list")
	if err != nil {
		return err
	}
	if !strings.Contains(list, id) || !strings.Contains(list, "held past expiry") {
		return fmt.Errorf("lex hold list does not list %s as held past expiry", id)
	}
	if _, code, err = d.cmd(ctx, "lex", "--config", teamCfg, "receive", id, "-o", d.path("received-expired")); err != nil {
		return err
	}
	if code != 3 {
		return fmt.Errorf("receiving an expired transfer exited %d, want 3", code)
	}
	fmt.Fprintln(d.out, "   ✓ kept past its expiry by the hold (and no longer delivered)")

	d.say("The hold is lifted: the next sweep deletes the transfer and certifies the deletion")
	if _, err := d.must(ctx, "lex", "--config", aliceCfg, "hold", "lift", "--matter", shortMatter, "--reason", "case settled"); err != nil {
		return err
	}
	if err := d.waitLog(ctx, regexp.MustCompile(`"msg":"transfer destroyed and certified","transfer":"`+id), 20*time.Second); err != nil {
		return err
	}
	cert := d.path("review-team", "certificate-"+id+".json")
	if _, err := d.must(ctx, "lex", "--config", teamCfg, "certificate", "get", id, "-o", cert); err != nil {
		return err
	}

	d.say("Anyone with the log's public key checks the destruction certificate offline")
	if _, err := d.must(ctx, "lex", "verify", "--log-key", d.logKey, cert); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "   ✓ the certificate's signature, its audit receipt and their binding verify")
	return nil
}

// waitLog waits until the gateway's log has a line matching re.
func (d *demo) waitLog(ctx context.Context, re *regexp.Regexp, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(d.path("lexgate.log")); err == nil && re.Match(b) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("the gateway did not log %s within %v", re, within)
}
