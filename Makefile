# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install bench lint clean demo fuzz soak

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	scripts/install_promtool.sh $(BIN)
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/cap serve

demo: install
	$(BIN)/cap demo

test: install
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

bench: install
	scripts/install_wrk.sh $(BIN) || echo "make bench: no wrk; POST /verify is driven by the httpx client (see its notes)"
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check core tasks flows deployments tests bench
	$(BIN)/mypy --strict core
	$(BIN)/ruff format --check core tasks flows deployments tests bench

clean:
	rm -rf $(VENV) build var .pytest_cache

fuzz: install
	CAP_FUZZ_EXAMPLES=120 CAP_FUZZ_MIN_REQUESTS=1000 CAP_FUZZ_FINDINGS=build/fuzz-findings.txt \
		$(BIN)/python -m pytest tests/api/test_fuzz.py -q -s -p no:cacheprovider

soak: install
	$(BIN)/python -m bench.soak --minutes 3
