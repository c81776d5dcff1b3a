# skiff: containerd shim-v2 runtimes in Rust.
PREFIX ?= /usr/local
CARGO ?= cargo
SHIM := containerd-shim-skiff-v2

.PHONY: build build-debug install test lint demo fuzz clean

build:
	$(CARGO) build --release --bin $(SHIM)

install: build
	install -D -m 0755 target/release/$(SHIM) $(DESTDIR)$(PREFIX)/bin/$(SHIM)

# Unit tests, then end-to-end tests with real runc and a private containerd per test.
# Needs root and the packages .ci/run installs.
test: build-debug
	@[ "$$(id -u)" = 0 ] || { echo "make test runs real containers: run it as root" >&2; exit 1; }
	@rm -f target/skipped-tests.txt target/test-report.txt
	$(CARGO) test --workspace
	@if [ -s target/test-report.txt ]; then echo "== measured:"; cat target/test-report.txt; fi
	@if [ -s target/skipped-tests.txt ]; then echo "== skipped on this machine:"; cat target/skipped-tests.txt; fi

build-debug:
	$(CARGO) build --workspace --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Fuzzes the shim's request decoding and dispatch (cargo-fuzz; stable Rust with
# RUSTC_BOOTSTRAP for the sanitizer flags). New inputs go to a scratch copy of the corpus.
FUZZ_SECONDS ?= 60
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	rm -rf target/fuzz-corpus && mkdir -p target/fuzz-corpus && cp fuzz/corpus/ttrpc_request/* target/fuzz-corpus/
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run ttrpc_request ../target/fuzz-corpus -- -max_total_time=$(FUZZ_SECONDS)

# Builds the shim, starts a throwaway containerd, runs a busybox container with the
# shim and prints what the container says. Installs missing Debian packages first.
demo:
	bash scripts/demo.sh

clean:
	$(CARGO) clean
