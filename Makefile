# One entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .tools/venv
PY_STAMP  := $(VENV)/.installed-test
BUILD_STAMP := $(VENV)/.installed-build
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
CARGO     ?= cargo
FUNCTIONS := disconnect-recorder shadow-reconciler

.PHONY: help setup setup-py setup-apt setup-node demo up test test-rust test-infra test-e2e test-readme test-ops test-console redrive synth-check fixtures lint fmt fuzz lambdas synth deploy agent-pi bench bench-init invoke-local clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# ---------------------------------------------------------------------------------------------
# Set-up: everything the tests need, from the package registries only.
setup: setup-py setup-apt setup-node ## Install the test tools (Python venv, infra's npm packages, Debian packages)

$(PY_STAMP): tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@
setup-py: $(PY_STAMP)

BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): tools/requirements-bench.txt $(PY_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-bench.txt
	touch $@

$(BUILD_STAMP): tools/requirements-build.txt $(PY_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-build.txt
	touch $@

NODE_STAMP := infra/node_modules/.installed
$(NODE_STAMP): infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund --loglevel=error
	touch $@
setup-node: $(NODE_STAMP)

setup-apt:
	@if ! command -v mosquitto >/dev/null || ! command -v mosquitto_sub >/dev/null || ! command -v jq >/dev/null \
	    || ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients jq \
	      chromium chromium-driver >/dev/null; \
	  else echo "note: install mosquitto, mosquitto-clients, jq, chromium and chromium-driver (apt-get install ...) for the broker, console and demo tests"; fi; \
	fi

# ---------------------------------------------------------------------------------------------
demo: setup ## The whole system on 127.0.0.1: emulator, real functions, real agent (scripts/demo.sh; KEEP=1 leaves it running)
	CARGO="$(CARGO)" scripts/demo.sh

up: setup-node ## The emulator with the stack in the foreground, to explore (scripts/up.sh); Ctrl-C stops it
	CARGO="$(CARGO)" scripts/up.sh

# The CDK app first: the Rust tests then read the template it synthesized in this run (IOT_PRESENCE_TEMPLATE),
# not the committed copy. test-rust runs from the recipe so that it comes after test-infra even under -j.
test: export IOT_PRESENCE_TEMPLATE = $(CURDIR)/$(SYNTH_TEMPLATE)
test: setup test-infra ## Run every test (what CI runs)
	$(MAKE) --no-print-directory test-rust
	$(MAKE) --no-print-directory test-readme
	$(MAKE) --no-print-directory test-ops
	$(MAKE) --no-print-directory test-console

# Tests that need mosquitto or the AWS CLI skip (printing a SKIPPED line) where they are missing; CI sets
# REQUIRE_TEST_TOOLS=1 so they fail instead. `cargo test --workspace` builds every package's binaries before it
# runs a test, so the system tests (tests/) find the functions, the agent and the emulator's CLI.
test-rust:
	$(CARGO) test --workspace --locked

# The CDK tests assert the template; cfn-lint checks the synthesized template the way CloudFormation
# would. Synthesis here uses placeholder bootstraps: the template does not depend on the code. The audit
# includes the 2,048-character policy limit, which depends on the ARNs: it runs for each partition's longest region.
SYNTH_CHECK_DIR := target/synth-check
SYNTH_TEMPLATE  := $(SYNTH_CHECK_DIR)/cdk.out/IotPresence.template.json
synth-check: setup-node
	rm -rf $(SYNTH_CHECK_DIR) && mkdir -p $(SYNTH_CHECK_DIR)/assets/{disconnect-recorder,shadow-reconciler}
	for f in disconnect-recorder shadow-reconciler; do echo placeholder > $(SYNTH_CHECK_DIR)/assets/$$f/bootstrap; done
	cd infra && npm run --silent synth -- -c lambdaAssetsDir=$(CURDIR)/$(SYNTH_CHECK_DIR)/assets -o $(CURDIR)/$(SYNTH_CHECK_DIR)/cdk.out

# Committed copies of what the CDK app synthesizes, for test runs without node (a plain `cargo test`): the whole
# template, and in crates/iot-policy's fixture the device policy document (its name and surroundings there are the
# fixture's own). test-infra fails when one differs from this run's synth (compared as sorted JSON); `make fixtures`
# refreshes both.
TEMPLATE_COPY := tests/fixtures/IotPresence.template.json
POLICY_COPY   := crates/iot-policy/tests/fixtures/device-policy.template.json
POLICY_DOCS   := [.Resources[] | select(.Type == "AWS::IoT::Policy") | .Properties.PolicyDocument]

test-infra: setup-node setup-py synth-check
	cd infra && npm test
	cfn-lint --config-file infra/.cfnlintrc.yaml -- $(SYNTH_TEMPLATE)
	for region in us-east-1 ap-southeast-5 cn-northwest-1 us-gov-west-1; do \
		$(CARGO) run --quiet --locked -p iot-policy -- audit $(SYNTH_TEMPLATE) --region $$region || exit 1; \
	done
	@cmp -s <(jq -S . $(TEMPLATE_COPY)) <(jq -S . $(SYNTH_TEMPLATE)) \
		|| { echo "$(TEMPLATE_COPY) differs from the template synthesized now: run \`make fixtures\` and commit it"; exit 1; }
	@cmp -s <(jq -S '$(POLICY_DOCS)' $(POLICY_COPY)) <(jq -S '$(POLICY_DOCS)' $(SYNTH_TEMPLATE)) \
		|| { echo "$(POLICY_COPY) differs from the device policy synthesized now: run \`make fixtures\` and commit it"; exit 1; }

fixtures: synth-check ## Refresh the committed copies of the synthesized template (see test-infra)
	cp $(SYNTH_TEMPLATE) $(TEMPLATE_COPY)
	jq --indent 1 --slurpfile synth $(SYNTH_TEMPLATE) \
		'(.Resources[] | select(.Type == "AWS::IoT::Policy") | .Properties.PolicyDocument) = ($$synth[0] | $(POLICY_DOCS))[0]' \
		$(POLICY_COPY) > $(POLICY_COPY).new && mv $(POLICY_COPY).new $(POLICY_COPY)

# The binaries the system tests run as processes; cargo builds them only when it builds their packages.
SYSTEM_TEST_BINARIES := disconnect-recorder shadow-reconciler device-agent iot-emulator
# The README's "Play with it" blocks, run as written against `make up` with a fresh state directory (the runner's
# own unit tests first: its expectations can fail). Needs the default ports free.
test-readme: setup setup-node ## The README's "Play with it" blocks, as written (tools/run-readme.py)
	python3 -m unittest tools/test_run_readme.py
	CARGO="$(CARGO)" python3 tools/run-readme.py

# The web console in Debian's chromium through chromedriver (WebDriver). The build is make up's (scripts/stack.sh):
# after test-readme it has nothing to do.
test-console: setup ## The web console in a real browser (chromium + chromedriver, tools/test_console.py)
	$(CARGO) build --locked -p iot-emulator -p disconnect-recorder -p shadow-reconciler -p device-agent
	$(VENV)/bin/python -m unittest tools/test_console.py

# The operator scripts against a moto server with the real AWS CLI (no AWS account).
test-ops: setup ## The operator scripts (make redrive) against a local moto server
	$(VENV)/bin/python -m unittest tools/test_redrive.py

test-e2e: setup ## Only the system tests (tests/): emulator + real function binaries + real device-agent, AWS SDKs
	$(CARGO) build --locked $(addprefix -p ,$(SYSTEM_TEST_BINARIES))
	$(CARGO) test --locked -p system-tests

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

# Needs a nightly toolchain (skips without one) and cargo-fuzz (installed when missing); docs/fuzzing.md.
FUZZ_SECONDS ?= 30
fuzz: ## Run every fuzz target (fuzz/) for FUZZ_SECONDS each; prints executions per target, fails on a crash
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# ---------------------------------------------------------------------------------------------
lambdas: $(BUILD_STAMP) ## Build the functions for Lambda (arm64, provided.al2023): target/lambda/<function>/bootstrap
	rustup target add aarch64-unknown-linux-gnu >/dev/null
	$(CARGO) lambda build --release --arm64 $(addprefix -p ,$(FUNCTIONS))
	@python3 tools/lambda-sizes.py $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap)

synth: setup-node ## Synthesize the CDK template (offline) into infra/cdk.out; needs `make lambdas` first
	cd infra && npm run synth

deploy: lambdas setup-node ## Deploy the stack with `cdk deploy` (needs AWS credentials and a bootstrapped account)
	cd infra && npm run deploy

# On AWS, after the cause of the failures is fixed: enables each function's redrive mapping, waits until its
# failed-events queue is empty (or stops shrinking) and disables it again (docs/deploy.md, "Operating it").
redrive: ## Replay the failed-events queues on AWS (FUNCTIONS=... to pick; needs AWS credentials)
	FUNCTIONS="$(FUNCTIONS)" scripts/redrive.sh

# Raspberry Pi OS 64-bit (Bookworm, glibc 2.36) and 32-bit Pi 2/3/4 (Bullseye or later, glibc 2.31).
PI_TARGETS := aarch64-unknown-linux-gnu.2.36 armv7-unknown-linux-gnueabihf.2.31
agent-pi: $(BUILD_STAMP) ## Cross-compile device-agent for the Pi (aarch64, armv7) into target/pi-binaries/
	rustup target add aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf >/dev/null
	for t in $(PI_TARGETS); do $(CARGO) zigbuild --profile pi -p device-agent --target $$t || exit 1; done
	mkdir -p target/pi-binaries
	cp target/aarch64-unknown-linux-gnu/pi/device-agent target/pi-binaries/device-agent-aarch64
	cp target/armv7-unknown-linux-gnueabihf/pi/device-agent target/pi-binaries/device-agent-armv7
	@ls -l target/pi-binaries/

invoke-local: $(BUILD_STAMP) ## Run disconnect-recorder under `cargo lambda watch` and invoke it with the sample events
	functions/disconnect-recorder/invoke-local.sh

# ---------------------------------------------------------------------------------------------
bench: setup $(BENCH_STAMP) ## Run the benchmarks (results: docs/benchmarks.md)
	$(CARGO) bench --workspace

bench-init: setup ## Init time of disconnect-recorder vs a Python boto3 Lambda, 20 runs each
	$(CARGO) bench -p disconnect-recorder --bench init

clean:
	$(CARGO) clean
	rm -rf .tools
