// Package notify tells people when something needs them: it delivers the
// events of the store's outbox by email (SMTP with STARTTLS or implicit
// TLS) and by webhook (HTTPS, signed per Standard Webhooks).
//
// # Events
//
// The store writes an event in the same transaction as the fact it
// reports (see store.Event and the Event* kinds): a transfer ready,
// downloaded, acknowledged, expiring, refused or quarantined; a four-eyes
// request made or approved; a legal hold placed or lifted. A [Notifier]
// routes each event once to its endpoints — every subscribed webhook, and
// one email per address the [Directory] gives for the event's parties and
// groups — and then delivers, at least once per event and endpoint: a
// crash between the endpoint's acceptance and its record sends the event
// again with the same id, which receivers deduplicate on.
//
// # Failures
//
// A failed delivery is retried with exponential backoff (Config.Backoff,
// doubling up to Config.MaxBackoff); after Config.MaxAttempts failures it
// is parked, listed by [Notifier.Parked] and queued again by
// [Notifier.Retry] (the gateway's admin listener serves both).
//
// # What leaves the gateway
//
// An email carries no file names and, unless the sender's organisation
// allows it in the directory, no matter number: see [MailData] and
// docs/notifications.md. Webhook bodies ([WebhookBody]) carry the event's
// [Payload], the matter only with WebhookConfig.IncludeMatter. Receivers
// check signatures with [Verify].
package notify
