# `make` then `make test` is the whole set-up on a fresh machine (Python 3.11 + make).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
N      ?= 1..8
# pytest-xdist workers for `make test` (auto: one per core; TEST_JOBS=0 runs in one process).
TEST_JOBS ?= auto

.DEFAULT_GOAL := all
.PHONY: all install verify test lint check-generated pdf bench clean help

all: install ## verify every shipped document and regenerate reports/ and derive/generated/
	$(PY) -m derive build --n $(N)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed ## create .venv and install the package

verify: install ## check every claim of the shipped documents (N=2..16 to change n)
	$(PY) -m derive verify --n $(N)

test: $(VENV)/.test-installed ## lint, then run the test suite
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -n $(TEST_JOBS)

lint: $(VENV)/.test-installed ## ruff only
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

check-generated: all ## fail if regenerated files differ from what is committed
	git diff --exit-code -- reports derive/generated
	test -z "$$(git status --porcelain --untracked-files=all -- reports derive/generated)"

pdf: all ## build reports/*.pdf from reports/*.tex with latexmk (fails when TeX is missing)
	$(PY) -m derive.report

bench: $(VENV)/.test-installed ## time verification and the generated code against baselines; write docs/benchmarks.md (BENCH_ARGS=--quick)
	$(PY) benchmarks/bench.py $(BENCH_ARGS)
	$(PY) benchmarks/core_speed.py
	$(PY) benchmarks/softmax_bench.py $(filter --quick,$(BENCH_ARGS))
	$(PY) benchmarks/attention_bench.py $(filter --quick,$(BENCH_ARGS))
	$(PY) benchmarks/build_bench.py $(filter --quick,$(BENCH_ARGS))
	$(PY) benchmarks/docs_page.py

clean: ## remove the virtual environment and build folders
	rm -rf $(VENV) reports/_build .pytest_cache .ruff_cache

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'
