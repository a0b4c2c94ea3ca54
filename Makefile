# The two commands of the README's quick start, and a few helpers.
PY ?= python3

.PHONY: demo test bench install

install:
	$(PY) -m pip install -q -e .

demo: install
	sgdlab train --data digits --model softmax --batch-size 32 --epochs 30 --lr 0.1 --seed 0 --out runs/demo

test:
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pytest -q

bench:
	$(PY) -m pip install -q -e '.[bench]' torch==2.13.0
	$(PY) benchmarks/bench_engine.py
