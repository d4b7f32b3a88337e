# Two entry points (see README): `make demo` and `make test`. Both build a project-local venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKDIR ?= workdir/synthetic_tps
PYTEST_ARGS ?=

.PHONY: venv demo test bench clean

$(VENV)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	# Optional extra: PyTorch (CPU wheel) only to read official .pth checkpoints.
	$(PY) -m pip install -q torch==2.13.0 || echo "torch not installed: .pth loading disabled (use .npz)"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) main.py --config=configs/synthetic_tps.py --workdir=$(WORKDIR)

test: venv
	$(PY) -m pytest -n 2 -q tests $(PYTEST_ARGS)

clean:
	rm -rf $(VENV)
