# The two commands of the README's quick start, and a few helpers.
PY ?= python3

.PHONY: demo test bench install

install:
	$(PY) -m pip install -q -e .

demo: install
	sgdlab sweep

test:
	bash scripts/ensure-chromium
	$(PY) -m pip install -q -e '.[test,ray]'
	$(PY) -m pytest -q

bench:
	$(PY) -m pip install -q -e '.[bench]' torch==2.13.0
	$(PY) benchmarks/bench_engine.py
