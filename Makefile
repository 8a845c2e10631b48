# The two commands a user needs: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The speakers extra needs torch; only its CPU build, installed before the extra (pip would
# otherwise take PyPI's CUDA build and ~3 GB of nvidia-* wheels): the wheel pip's
# configuration offers where there is one, else PyTorch's CPU index.
TORCH_CPU := torch==2.13.0+cpu
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

.PHONY: install system-deps run test test-long lint format unit integration e2e helm bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "vtx needs $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet '$(TORCH_CPU)' 2>/dev/null \
		|| $(BIN)/python -m pip install --quiet --index-url $(TORCH_CPU_INDEX) torch
	$(BIN)/python -m pip install --quiet -e '.[dev,deploy,speakers]'
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

# Everything on SQLite, then again on a real PostgreSQL what the database takes part in:
# the integration tests and the e2e tests not marked `one_database`.
test: lint system-deps
	$(BIN)/pytest -p no:cacheprovider -ra tests
	VTX_TEST_DATABASE=postgres $(BIN)/pytest -p no:cacheprovider -ra \
		-m 'not long and not one_database' tests/integration tests/e2e

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
	$(BIN)/python -m pip install --quiet -e '.[dev,deploy,speakers,bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache build *.egg-info
