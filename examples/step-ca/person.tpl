{{- /*
  X.509 template of the people CA's OIDC provisioner (step-ca). The ID token's
  claims are .Token.<claim>. A person's certificate is an X.509-SVID:
  one URI SAN spiffe://harbor-law.example/person/<subject>, client
  authentication only. Without a second factor ("otp" in the token's amr,
  as the identity provider reports it) no certificate is issued; to require an
  assurance level instead, test .Token.acr here.
*/ -}}
{{- if not (and .Token.amr (has "otp" .Token.amr)) }}{{ fail "multi-factor authentication is required: sign in with your second factor" }}{{ end -}}
{
  "subject": {"commonName": {{ toJson .Token.sub }}},
  "uris": {{ toJson (list (printf "spiffe://harbor-law.example/person/%s" .Token.sub)) }},
  "keyUsage": ["digitalSignature"],
  "extKeyUsage": ["clientAuth"]
}
