# The two commands a user needs: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps run test test-long lint format unit integration e2e helm bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "vtx needs $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,deploy]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

run: $(STAMP)
	$(BIN)/vtx up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Everything on SQLite, then what touches a database again on a real PostgreSQL.
test: lint system-deps
	$(BIN)/pytest -p no:cacheprovider -ra tests
	VTX_TEST_DATABASE=postgres $(BIN)/pytest -p no:cacheprovider -ra tests/integration tests/e2e

# The long campaigns (tests marked `long`: the whole hostile-media corpus), after `make test`.
test-long: $(STAMP) system-deps
	$(BIN)/pytest -p no:cacheprovider -ra -m long tests

# The Helm chart on a real Kubernetes node (the k8s lab, as root): see deploy/lab/run.sh.
.PHONY: test-cluster
test-cluster: $(STAMP)
	bash deploy/lab/run.sh

unit: $(STAMP)
	$(BIN)/pytest -ra tests/unit

integration: $(STAMP)
	$(BIN)/pytest -ra tests/integration

e2e: $(STAMP)
	$(BIN)/pytest -ra tests/e2e

helm: $(STAMP)
	$(BIN)/pytest -ra tests/helm

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,deploy,bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache build *.egg-info
