#!/bin/sh
# Registration entries for harbor-law.example. AGENT is the agent's SPIFFE ID
# (spire-server agent list), e.g. spiffe://harbor-law.example/spire/agent/join_token/<token>.
set -eu
AGENT=${AGENT:?set AGENT to the gateway host agent's SPIFFE ID}
SOCK=${SOCK:-/run/spire/server/api.sock}

# The gateway, running as the Unix user lexgate.
spire-server entry create -socketPath "$SOCK" -parentID "$AGENT" \
  -spiffeID spiffe://harbor-law.example/gateway -selector unix:user:lexgate

# A legacy system that sends with lex: the DMS export job, as the user dms.
spire-server entry create -socketPath "$SOCK" -parentID "$AGENT" \
  -spiffeID spiffe://harbor-law.example/legacy/dms -selector unix:user:dms \
  -federatesWith spiffe://manila-lpo.example
