# Two commands from a fresh clone: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup_env.sh

demo: setup
	$(BIN)/simdata render --meshes assets/ycb --out data/demo --scenes 4 --views 3 --seed 0 --workers 2
	$(BIN)/simdata info data/demo
	$(BIN)/simdata preview data/demo --out data/demo/preview.png
	@echo "demo: dataset in data/demo, preview in data/demo/preview.png"

test: setup
	$(BIN)/python -m pytest -q tests

bench: setup
	$(BIN)/python benchmarks/render_throughput.py
	$(BIN)/python benchmarks/adapt_pixelda.py
	$(BIN)/python benchmarks/adapt_spigan.py

clean:
	rm -rf data/demo .pytest_cache
