# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install bench bench-zk-full lint clean demo fuzz soak zk-setup test-zk-ceremony mutation mutation-table

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv

$(STAMP): pyproject.toml package-lock.json scripts/install_promtool.sh scripts/install_browser.sh \
		scripts/install_postgres.sh | $(BIN)/python
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	scripts/install_promtool.sh $(BIN)
	scripts/install_browser.sh
	scripts/install_postgres.sh
	scripts/zk/install_toolchain.sh
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/cap serve

demo: install
	$(BIN)/cap demo

# Compile the development circuit and build its (NOT FOR PRODUCTION) setup into the cache (~/.cache/cap-zk):
# minutes of CPU once per machine, then free. Tests would build it lazily too; this makes the cost visible.
zk-setup: install
	nice -n 10 $(BIN)/cap zk setup --dev

# A whole phase-2 ceremony through the CLI (setup from a checked ptau, two contributions, beacon, verify-setup,
# tampering): minutes of CPU, so not part of `make test`.
test-zk-ceremony: zk-setup
	CAP_ZK_CEREMONY_TESTS=1 $(BIN)/python -m pytest tests/cli/test_cli_zk.py -q -n 0

test: install zk-setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup --max-worker-restart=0 -q --durations=25

bench: install
	scripts/install_wrk.sh $(BIN) || echo "make bench: no wrk; POST /verify is driven by the httpx client (see its notes)"
	$(BIN)/python -m bench

# cap-proof.v3 at production size (B = 64, depth 17, 75,000 listed keys, 1,000 and 10,000 suppliers, +1 %,
# verify in-process and over HTTP): about an hour of CPU on 2 cores, so run it alone. Its phase 1 is a tau = 1
# TIMING-ONLY file (bench/bench_zk_full.py says why); figures go to bench/results-zk-full.json.
bench-zk-full: install
	nice -n 5 $(BIN)/python bench/bench_zk_full.py

lint: install
	$(BIN)/ruff check core tasks flows deployments tests bench
	$(BIN)/mypy --strict core
	$(BIN)/ruff format --check core tasks flows deployments tests bench

clean:
	rm -rf $(VENV) build var .pytest_cache node_modules

fuzz: install
	CAP_FUZZ_EXAMPLES=120 CAP_FUZZ_MIN_REQUESTS=1000 CAP_FUZZ_FINDINGS=build/fuzz-findings.txt \
		$(BIN)/python -m pytest tests/api/test_fuzz.py -q -s -p no:cacheprovider

soak: install
	$(BIN)/python -m bench.soak --minutes 3
	CAP_STATEFUL_STEPS=$${CAP_STATEFUL_STEPS:-2000} $(BIN)/python -m pytest -q -n 0 tests/integration/test_ops_state_machine.py

# Mutation testing of the verification and backup checks: each module against its own tests
# (scripts/mutation.py has the mapping). One module: make mutation MODULE=core/merkle.py
# Results land in build/mutation/; `make mutation-table` writes the scores into docs/testing.md.
MODULE ?=
mutation: install
	nice -n 15 $(BIN)/python scripts/mutation.py --children 2 $(MODULE); status=$$?; \
		$(BIN)/python scripts/mutation_table.py; exit $$status

mutation-table: install
	$(BIN)/python scripts/mutation_table.py
