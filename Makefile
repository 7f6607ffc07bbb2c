# lexgate — the two commands a new machine needs are `make demo` and `make test`.
# Everything else they need is installed from here: Go modules and pinned Go tools
# (age, opa) by the go command, Debian packages by apt-get when missing.

GO      ?= go
BIN     := bin
PKGS    := ./...
# Debian packages some tests and benchmarks drive as real peers. Debian's curl
# speaks sftp:// (libssh2); python3-paramiko is for /usr/bin/python3; zsh and
# fish load lex's completion scripts; systemd's systemd-analyze rates the unit;
# rsyslog (with rsyslog-gnutls) receives the SIEM forwarder's syslog over TLS;
# postgresql and mariadb-server back the cluster tests and make cluster-demo.
DEB_PKGS := openssh-client openssh-server lftp rclone python3-paramiko curl zsh fish systemd rsyslog rsyslog-gnutls postgresql mariadb-server

.PHONY: all build demo cluster-demo test test-short vet fuzz bench bench-audit bench-wan load deb-deps tools tools-heavy spire stepca hydra oidcop versitygw clean help

all: build

help:
	@echo "make demo   - run the whole story on 127.0.0.1 (gateway, two organisations, send, refusal, receive)"
	@echo "make cluster-demo - three replicas on PostgreSQL + MariaDB + versitygw (S3); one killed mid-upload, the send resumes on another"
	@echo "make test   - vet, staticcheck, gofmt, Rego tests with the stock opa CLI, and every Go test with -race"
	@echo "make fuzz   - every fuzz target for FUZZTIME each (default 30s; FUZZ=regexp picks targets)"
	@echo "make bench  - 1 GiB and 20,000 files through the gateway beside OpenSSH sftp (-r) and age; CPU floors (docs/performance.md)"
	@echo "make bench-audit - audit log: entries appended per second, upload completion to receipt p50/p99 (private and public entries); incident report over 100,000 entries"
	@echo "make load   - 200 + 20 concurrent senders for LOAD_DURATION (60s) on one gateway, then on three replicas on PostgreSQL + MariaDB (LOAD_BACKENDS): transfers/s, errors, p50/p99, peak RSS, fds"
	@echo "make bench-wan - lex vs sftp over emulated 150-250 ms lossy paths (Linux, root; WAN_SIZE=256MiB)"
	@echo "make build  - build bin/lex and bin/lexgate"

# The commit --version reports, for builds the go command does not stamp.
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -modified)

build:
	$(GO) build -ldflags "-X github.com/lexgate/lexgate/gateway/buildinfo.commit=$(COMMIT)" -o $(BIN)/ ./cmd/lex ./cmd/lexgate

# Pinned Go tools (go.mod "tool" lines): the stock age and opa CLIs, staticcheck.
# Mailpit (the SMTP server of the notification tests) is pinned in a module of
# its own, gateway/notify/tools, so its dependencies stay out of go.mod.
tools:
	$(GO) build -o /dev/null filippo.io/age/cmd/age github.com/open-policy-agent/opa honnef.co/go/tools/cmd/staticcheck
	cd gateway/notify/tools && $(GO) build -o /dev/null github.com/axllent/mailpit

# Heavy test-only servers (SPIRE; Ory Hydra, zitadel/oidc's provider and
# step-ca for lex login), each pinned in its own nested module
# (cmd/internal/tools/*/go.mod) so that their
# dependencies stay out of lexgate's go.mod. Built once into TOOLS_DIR (one
# directory per version) and kept there and in the Go build cache;
# gateway/spiretest and gateway/ssotest find them there, and build them
# themselves when they are missing. Cold, on a shared 2-core machine: SPIRE
# ~9.5 min, step-ca+step ~3 min, Hydra ~2 min; keep $(HOME)/.cache between CI runs.
TOOLS_DIR ?= $(HOME)/.cache/lexgate-tools
SPIRE_VERSION := v1.13.3
SPIRE_DIR := $(TOOLS_DIR)/spire-$(SPIRE_VERSION)
export LEXGATE_TOOLS_DIR := $(TOOLS_DIR)
spire: $(SPIRE_DIR)/spire-server $(SPIRE_DIR)/spire-agent
$(SPIRE_DIR)/spire-server $(SPIRE_DIR)/spire-agent: cmd/internal/tools/spire/go.mod cmd/internal/tools/spire/go.sum
	@mkdir -p $(SPIRE_DIR)
	cd cmd/internal/tools/spire && GOWORK=off $(GO) build -o $(SPIRE_DIR)/ github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent
	@touch $(SPIRE_DIR)/spire-server $(SPIRE_DIR)/spire-agent

STEPCA_VERSION := v0.30.2
STEPCA_DIR := $(TOOLS_DIR)/stepca-$(STEPCA_VERSION)
stepca: $(STEPCA_DIR)/step-ca $(STEPCA_DIR)/step
$(STEPCA_DIR)/step-ca $(STEPCA_DIR)/step: cmd/internal/tools/stepca/go.mod cmd/internal/tools/stepca/go.sum
	@mkdir -p $(STEPCA_DIR)
	cd cmd/internal/tools/stepca && GOWORK=off CGO_ENABLED=0 $(GO) build -o $(STEPCA_DIR)/ github.com/smallstep/certificates/cmd/step-ca github.com/smallstep/cli/cmd/step
	@touch $(STEPCA_DIR)/step-ca $(STEPCA_DIR)/step

HYDRA_VERSION := v2.3.0
HYDRA_DIR := $(TOOLS_DIR)/hydra-$(HYDRA_VERSION)
hydra: $(HYDRA_DIR)/hydra
$(HYDRA_DIR)/hydra: cmd/internal/tools/hydra/go.mod cmd/internal/tools/hydra/go.sum
	@mkdir -p $(HYDRA_DIR)
	cd cmd/internal/tools/hydra && GOWORK=off $(GO) build -tags sqlite,sqlite_omit_load_extension -o $(HYDRA_DIR)/ github.com/ory/hydra/v2
	@touch $@

# zitadel/oidc's OpenID provider (its op package and example storage and
# pages, with the small wrapper in cmd/internal/tools/oidcop/main.go): the
# provider lex login --device is tested against (Hydra v2.3.0 has no device
# grant). Bump the suffix of OIDCOP_VERSION, and ssotest.OIDCOPVersion, when
# main.go changes. ~10 s cold.
OIDCOP_VERSION := v3.53.0-1
OIDCOP_DIR := $(TOOLS_DIR)/oidcop-$(OIDCOP_VERSION)
oidcop: $(OIDCOP_DIR)/oidcop
$(OIDCOP_DIR)/oidcop: cmd/internal/tools/oidcop/go.mod cmd/internal/tools/oidcop/go.sum cmd/internal/tools/oidcop/main.go
	@mkdir -p $(OIDCOP_DIR)
	cd cmd/internal/tools/oidcop && GOWORK=off $(GO) build -o $(OIDCOP_DIR)/ github.com/lexgate/lexgate/cmd/internal/tools/oidcop
	@touch $@

# versitygw, the S3-compatible server of the cluster tests and make
# cluster-demo (MinIO is not to be used).
VERSITYGW_VERSION := v1.8.0
VERSITYGW_DIR := $(TOOLS_DIR)/versitygw-$(VERSITYGW_VERSION)
versitygw: $(VERSITYGW_DIR)/versitygw
$(VERSITYGW_DIR)/versitygw: cmd/internal/tools/versitygw/go.mod cmd/internal/tools/versitygw/go.sum
	@mkdir -p $(VERSITYGW_DIR)
	cd cmd/internal/tools/versitygw && GOWORK=off $(GO) build -o $(VERSITYGW_DIR)/ github.com/versity/versitygw/cmd/versitygw
	@touch $@

tools-heavy: spire stepca hydra oidcop versitygw

# Debian packages, installed only when a program is missing (we run as root).
deb-deps:
	@missing=""; \
	command -v sftp >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v lftp >/dev/null 2>&1 || missing="$$missing lftp"; \
	command -v rclone >/dev/null 2>&1 || missing="$$missing rclone"; \
	/usr/bin/python3 -c 'import paramiko' >/dev/null 2>&1 || missing="$$missing python3-paramiko"; \
	curl -V 2>/dev/null | grep -qw sftp || missing="$$missing curl"; \
	command -v zsh >/dev/null 2>&1 || missing="$$missing zsh"; \
	command -v fish >/dev/null 2>&1 || missing="$$missing fish"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	[ -x /usr/sbin/rsyslogd ] || missing="$$missing rsyslog"; \
	dpkg -s rsyslog-gnutls >/dev/null 2>&1 || missing="$$missing rsyslog-gnutls"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/sbin/mariadbd ] || missing="$$missing mariadb-server"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: build deb-deps
	$(GO) run ./cmd/lexdemo -bin $(BIN) -dir demo-out

# Three replicas on PostgreSQL, MariaDB and versitygw (S3): one killed
# mid-upload, the send finished through another (docs/scale-out.md).
cluster-demo: build deb-deps versitygw
	$(GO) run ./cmd/lexcluster -bin $(BIN) -dir cluster-out -versitygw $(VERSITYGW_DIR)/versitygw

vet:
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$fmt" ]; then echo "gofmt would change:"; echo "$$fmt"; exit 1; fi

test: tools tools-heavy deb-deps vet
	$(GO) tool opa fmt --fail -l policies/ >/dev/null
	$(GO) tool opa test policies/
	$(GO) test -race -timeout 14m $(PKGS)

test-short: vet
	$(GO) test -short $(PKGS)

# Every fuzz target in the tree, one at a time (go test fuzzes one target per run),
# for FUZZTIME each; FUZZ=regexp picks targets by name. A crasher is written to the
# package's testdata/fuzz/FuzzX/: fix the bug and commit it as a seed (make test
# runs every seed). Prints the executions of each target at the end. Inputs that
# reach new code are minimized for at most FUZZMINIMIZE (go's default, 60s, spends a
# whole short run minimizing one large input, such as a tar archive).
FUZZTIME     ?= 30s
FUZZ         ?= .
FUZZMINIMIZE ?= 2s
fuzz:
	@sum=$$(mktemp); log=$$(mktemp); \
	for f in $$(grep -l '^func Fuzz' $$(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go')); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f | grep -E '$(FUZZ)'); do \
			echo "== ./$$(dirname $$f) $$t ($(FUZZTIME))"; \
			if ! $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./$$(dirname $$f) >$$log 2>&1; then \
				cat $$log; rm -f $$sum $$log; exit 1; \
			fi; \
			echo "./$$(dirname $$f) $$t: $$(grep -o 'elapsed: [^,]*, execs: [0-9]*' $$log | tail -1)" | tee -a $$sum; \
		done; \
	done; \
	echo; echo "fuzz targets run:"; cat $$sum; rm -f $$sum $$log

bench: build tools deb-deps
	$(GO) run ./cmd/lexbench -bin $(BIN)

# The audit log alone: sustained appends (64 writers) and the latency an upload
# completion adds before its receipt (append + signed checkpoint + inclusion proof).
bench-audit:
	$(GO) test -run '^$$' -bench . -benchtime 5s ./gateway/audit/
	$(GO) test -run '^$$' -bench IncidentReport -benchmem ./cli/

# One lexgate under load on loopback for LOAD_DURATION: 200 senders of 1 MiB and
# 20 of 256 MiB bundles, receivers downloading and acknowledging (purged as they
# go); prints completed, transfers/s, errors, p50/p99, peak RSS and descriptors
# before/after. Then the same on three replicas on PostgreSQL + MariaDB and a
# shared spool (LOAD_BACKENDS=embedded for the first alone), side by side.
LOAD_DURATION ?= 60s
LOAD_BACKENDS ?= embedded,cluster
load: build deb-deps versitygw
	$(GO) run ./cmd/lexload -lexgate $(BIN)/lexgate -duration $(LOAD_DURATION) -backends $(LOAD_BACKENDS)

# lex and OpenSSH sftp over an emulated long, lossy path between two network
# namespaces (a Go packet forwarder on TUN devices; Linux, root). WAN_SIZE sets
# the test file (default 256MiB).
WAN_SIZE ?= 256MiB
bench-wan: build deb-deps
	$(GO) run ./cmd/lexwan -bin $(BIN) -size $(WAN_SIZE)

clean:
	rm -rf $(BIN) demo-out
