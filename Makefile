# Two commands on a fresh machine: `make demo` and `make test` (each bootstraps what is missing).
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit faults faults-tls chaos bench clean

$(STAMP): pyproject.toml deploy/bootstrap.sh
	VENV=$(VENV) deploy/bootstrap.sh

demo: $(STAMP)  ## the whole chain on simulated devices; Ctrl-C to stop
	$(BIN)/wastecart demo --rounds 3 --pace 0.7

test: $(STAMP) lint  ## lint, type-check and the whole test suite (unit + integration), then the faults on TLS
	$(BIN)/pytest
	WASTECART_FAULTS_TLS=1 $(BIN)/pytest tests/faults

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: $(STAMP)  ## only the fast, pure tests
	$(BIN)/pytest tests/unit

faults: $(STAMP)  ## only the fault-injection tests (real processes, kill -9, outages)
	$(BIN)/pytest tests/faults

faults-tls: $(STAMP)  ## the fault tests again on the deployed broker config (TLS, client certificates, ACL)
	WASTECART_FAULTS_TLS=1 $(BIN)/pytest tests/faults

chaos: $(STAMP)  ## the cart killed 500 times at random points (CI does 50)
	WASTECART_CHAOS_KILLS=500 $(BIN)/pytest tests/faults -k cart_killed_many_times

bench: $(STAMP)  ## benchmarks -> bench-report.json
	$(BIN)/python -m tests.bench --out bench-report.json

clean:
	rm -rf $(VENV) bench-report.json .pytest_cache .mypy_cache .ruff_cache
