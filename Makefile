# Two entry points (see README): `make demo` and `make test` (`make test-fast` while editing). Both build a project-local venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKDIR ?= workdir/synthetic_tps
PYTEST_ARGS ?=
# Huge-page malloc for the test process itself (entry points set it themselves: tps_jax/host.py).
TEST_ENV := GLIBC_TUNABLES=glibc.malloc.hugetlb=1

.PHONY: venv demo test test-fast lint clean

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

# Everything (CI). `test-fast`: the unit tests only (no end-to-end runs, no subprocesses),
# for the edit-run loop.
test: venv lint
	$(TEST_ENV) $(PY) -m pytest -n 2 --dist worksteal -q tests $(PYTEST_ARGS)

test-fast: venv
	$(TEST_ENV) $(PY) -m pytest -n 2 --dist worksteal -q -m "not slow" tests $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV)
