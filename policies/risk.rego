package lexgate

# Risk signals (issue 16): the gateway keeps a statistical baseline of each
# identity's activity (exponentially weighted bytes and sends per day, the
# recipient organisations and hours it usually sends to and at, recent
# refusals and downloads) and sends its assessment as input.risk — named
# signals with values — and input.risk_score (0 to 100). Statistics, not a
# judgement: a security team tunes the threshold here.

# risk_refuse_at is the score from which a send or a receive is refused:
# data.data.risk.refuse_at when the data sets it, 70 otherwise. (The gateway
# also raises an alert — WARN log, metric, audit entry — from 50.)
default risk_refuse_at := 70

risk_refuse_at := data.data.risk.refuse_at

# risk_flagged lists the flagged signals as name=value.
risk_flagged := concat(", ", [sprintf("%s=%v", [s.name, s.value]) |
	some s in object.get(object.get(input, "risk", {}), "signals", [])
	s.flagged != false
])

deny contains {
	"code": "risk.unusual",
	"message": sprintf("%s's activity is far outside its usual pattern (risk score %d of 100: %s): ask your security team to review it before this %s goes ahead", [who(source), input.risk_score, risk_flagged, action]),
} if {
	action in {"send", "receive"}
	input.risk_score >= risk_refuse_at
}
