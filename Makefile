# skiff: containerd shim-v2 runtimes in Rust.
PREFIX ?= /usr/local
CARGO ?= cargo
SHIM := containerd-shim-skiff-v2
# The same shim with youki's libcontainer in place of runc (youki-shim/, youki-driver/).
YOUKI_SHIM := containerd-shim-skiff-youki-v2
# libcontainer's seccomp goes through libseccomp: linked statically into the release build.
SECCOMP_STATIC := LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=$(shell pkg-config --variable=libdir libseccomp 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)

.PHONY: build build-debug install test lint demo fuzz bench cribench conformance clean

# The released shim links glibc statically: an idle shim then maps no libc.so, which was
# ~0.8 MiB of its resident pages. Building for an explicit --target keeps build scripts
# and proc-macros dynamic, as they must be.
TARGET ?= $(shell rustc -vV | sed -n 's/^host: //p')
SHIM_BIN := target/$(TARGET)/release/$(SHIM)
# The runc shim, one per pod, is built for size (opt-level "z" for its whole LTO build;
# the libcontainer shim and skiffd keep the profile's "s"): beside "s" it is 113 KiB
# smaller and ~150 KiB less RSS per idle shim, latencies and CPU the same (BENCHMARKS.md).
SHIM_BUILD := RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_OPT_LEVEL=z
YOUKI_BIN := target/$(TARGET)/release/$(YOUKI_SHIM)

build:
	$(SHIM_BUILD) $(CARGO) build --release --target $(TARGET) --bin $(SHIM)
	$(SECCOMP_STATIC) RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --target $(TARGET) --bin $(YOUKI_SHIM)
	$(CARGO) build --release --bin skiffd --bin skiff

install: build
	install -D -m 0755 $(SHIM_BIN) $(DESTDIR)$(PREFIX)/bin/$(SHIM)
	install -D -m 0755 $(YOUKI_BIN) $(DESTDIR)$(PREFIX)/bin/$(YOUKI_SHIM)
	install -D -m 0755 target/release/skiffd $(DESTDIR)$(PREFIX)/bin/skiffd
	install -D -m 0755 target/release/skiff $(DESTDIR)$(PREFIX)/bin/skiff

# containerd 1.7, 2.1, 2.2 and 2.3, unpacked (not installed) by
# ../shared/tools/containerd-releases.sh: trixie is 1.7, sid 2.1.
RELEASES ?= /var/cache/containerd-releases
RELEASES_SCRIPT ?= ../shared/tools/containerd-releases.sh
# Docker's daemon and client for integration/tests/docker.rs (unpacked, not installed).
DOCKER_RELEASE ?= /var/cache/docker-release
# runc 1.3.6 and 1.5.1 (static builds of ../shared/tools/runc/), unpacked beside the
# system's 1.1.5 by scripts/runc-releases.sh; 1.5.1 is the current runc of the matrix.
RUNC_RELEASES ?= /var/cache/runc
RUNC_NEW := $(RUNC_RELEASES)/1.5.1/usr/sbin
RUNC_MID := $(RUNC_RELEASES)/1.3.6/usr/sbin
# The integration tests that run under containerd, once per generation.
CONTAINERD_TESTS := --test containerd_task --test task_api --test cgroups --test faults --test install --test cri --test cri_sandbox --test cri_userns --test go_client --test confinement --test many_layers

# Unit tests, then end-to-end tests with real runc and a private containerd per test:
# the whole workspace under the system's containerd (1.6), then the containerd tests
# again under 1.7, 2.1, 2.2 and 2.3 (under 2.3 also with runc 1.5.1; and with the
# libcontainer shim under 1.6 and 2.3), runc-driver and shimtest with runc 1.3.6 and 1.5.1,
# then what needs a cgroup v2 machine in VMs (scripts/cgv2-stage.sh; skipped, saying
# why, where the VM cannot boot). Needs root and the packages .ci/run installs.
test: build-debug
	@[ "$$(id -u)" = 0 ] || { echo "make test runs real containers: run it as root" >&2; exit 1; }
	@rm -f target/skipped-tests.txt target/test-report.txt
	@if { [ ! -x $(RELEASES)/sid/usr/bin/containerd ] || [ ! -x $(RELEASES)/2.3/usr/bin/containerd ]; } && [ -f $(RELEASES_SCRIPT) ]; then bash $(RELEASES_SCRIPT) $(RELEASES); fi
	@if [ ! -x $(DOCKER_RELEASE)/current/usr/sbin/dockerd ]; then bash scripts/docker-release.sh $(DOCKER_RELEASE); fi
	@if [ ! -x $(RUNC_NEW)/runc ] || [ ! -x $(RUNC_MID)/runc ]; then bash scripts/runc-releases.sh $(RUNC_RELEASES); fi
	@echo "== the workspace, under $$(containerd --version)"
	$(CARGO) test --workspace
	@echo "== shimtest: every scenario against our shim, started as containerd 1.6-2.2 start it"
	target/debug/shimtest --shim target/debug/$(SHIM)
	@echo "== shimtest: every scenario against our shim, started with containerd 2.3's bootstrap protocol"
	target/debug/shimtest --shim target/debug/$(SHIM) --bootstrap
	@echo "== runc-driver and shimtest (2.3's bootstrap) with runc 1.3.6 and 1.5.1"
	@for dir in $(RUNC_MID) $(RUNC_NEW); do \
	  echo "-- $$($$dir/runc --version | head -n 1)"; \
	  SKIFF_RUNC_BIN=$$dir $(CARGO) test -q -p runc-driver --test real_runc || exit 1; \
	  PATH=$$dir:$$PATH target/debug/shimtest --shim target/debug/$(SHIM) --bootstrap || exit 1; \
	done
	@echo "== shimtest: the libcontainer shim (BinaryName is unsupported there: README)"
	target/debug/shimtest --shim target/debug/$(YOUKI_SHIM) --state-root /run/containerd/youki --skip options/runtime-binary
	@echo "== shimtest: the libcontainer shim's stdio, started with containerd 2.3's bootstrap protocol"
	target/debug/shimtest --shim target/debug/$(YOUKI_SHIM) --state-root /run/containerd/youki --bootstrap --filter stdio/
	@echo "== the containerd tests with the libcontainer shim, under $$(containerd --version)"
	SKIFF_SHIM=$(CURDIR)/target/debug/$(YOUKI_SHIM) $(CARGO) test -p skiff-integration $(CONTAINERD_TESTS) --test docker
	@for gen in trixie sid 2.2 2.3; do \
	  bin=$(RELEASES)/$$gen/usr/bin; \
	  if [ -x $$bin/containerd ]; then \
	    echo "== the containerd tests, under $$($$bin/containerd --version)"; \
	    SKIFF_CONTAINERD_BIN=$$bin $(CARGO) test -p skiff-integration $(CONTAINERD_TESTS) || exit 1; \
	  else \
	    echo "SKIPPED containerd from $$gen: not unpacked in $(RELEASES) (run $(RELEASES_SCRIPT))" >> target/skipped-tests.txt; \
	  fi; \
	done
	@if [ -x $(RELEASES)/2.3/usr/bin/containerd ]; then \
	  echo "== the containerd tests with runc 1.5.1, under $$($(RELEASES)/2.3/usr/bin/containerd --version)"; \
	  SKIFF_RUNC_BIN=$(RUNC_NEW) SKIFF_CONTAINERD_BIN=$(RELEASES)/2.3/usr/bin $(CARGO) test -p skiff-integration $(CONTAINERD_TESTS) || exit 1; \
	else \
	  echo "SKIPPED runc 1.5.1 under containerd 2.3: not unpacked in $(RELEASES) (run $(RELEASES_SCRIPT))" >> target/skipped-tests.txt; \
	fi
	@if [ -x $(RELEASES)/2.3/usr/bin/containerd ]; then \
	  echo "== the containerd tests with the libcontainer shim, under $$($(RELEASES)/2.3/usr/bin/containerd --version)"; \
	  SKIFF_SHIM=$(CURDIR)/target/debug/$(YOUKI_SHIM) SKIFF_CONTAINERD_BIN=$(RELEASES)/2.3/usr/bin $(CARGO) test -p skiff-integration $(CONTAINERD_TESTS) || exit 1; \
	else \
	  echo "SKIPPED the libcontainer shim under containerd 2.3: not unpacked in $(RELEASES) (run $(RELEASES_SCRIPT))" >> target/skipped-tests.txt; \
	fi
	@echo "== the cgroup v2 stage: shimtest and the cgroup, checkpoint and systemd tests in VMs"
	CARGO=$(CARGO) bash scripts/cgv2-stage.sh
	@if [ -s target/test-report.txt ]; then echo "== measured:"; cat target/test-report.txt; fi
	@if [ -s target/skipped-tests.txt ]; then echo "== skipped on this machine:"; cat target/skipped-tests.txt; fi

build-debug:
	$(CARGO) build --workspace --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Fuzzes the shim's request decoding and dispatch (ttrpc_request), skiffd's layer
# unpacking against a victim directory outside the root (layer_unpack) and the shim's
# stdio pumps against their model (pump_model, shim/tests/pump_model/), each for
# FUZZ_SECONDS (cargo-fuzz; stable Rust with RUSTC_BOOTSTRAP for the sanitizer flags).
# New inputs go to a scratch copy of each corpus.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := ttrpc_request layer_unpack pump_model
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	for t in $(FUZZ_TARGETS); do \
	  rm -rf target/fuzz-corpus/$$t && mkdir -p target/fuzz-corpus/$$t && cp fuzz/corpus/$$t/* target/fuzz-corpus/$$t/ && \
	  (cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t ../target/fuzz-corpus/$$t -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

# Our shim and containerd's Go shims side by side (../shared/bench), into BENCHMARKS.md.
# shimtest against our shim and containerd's Go shims of 1.6, 1.7 and 2.x, side by side;
# the matrix goes into README.md. Fails if ours fails a scenario a Go shim passes.
conformance: build
	$(CARGO) build --release -p skiff-integration --bin shimtest
	SHIM_BIN=$(SHIM_BIN) bash scripts/conformance.sh

bench: build
	$(CARGO) build --release -p skiff-integration --bin shimtest
	SHIM_BIN=$(SHIM_BIN) YOUKI_BIN=$(YOUKI_BIN) bash scripts/bench.sh

# A pod sandbox through containerd 2.3's CRI, side by side: its Go shim with a pause
# container, skiff with one, skiff serving the sandbox itself (sandboxer "shim"); into
# BENCHMARKS.md. CRIBENCH_ARGS: --rounds N --idle N --burst N --clients N.
cribench:
	$(SHIM_BUILD) $(CARGO) build --release --target $(TARGET) --bin $(SHIM)
	$(CARGO) build --release -p skiff-integration --bin cribench
	SKIFF_CONTAINERD_BIN=$(RELEASES)/2.3/usr/bin SKIFF_SHIM=$(CURDIR)/$(SHIM_BIN) target/release/cribench $(CRIBENCH_ARGS)

# Builds the shim, starts a throwaway containerd, runs a busybox container with the
# shim and prints what the container says. Installs missing Debian packages first.
demo:
	bash scripts/demo.sh

clean:
	$(CARGO) clean
