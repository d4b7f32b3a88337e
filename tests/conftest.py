"""Test-wide setup: the repo root on sys.path and small, fast XLA compiles."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# Tests run tiny models a few times: XLA's optimisation passes cost more than they save
# (about 2x faster compiles). Set before jax is imported; subprocesses inherit it.
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')

_SHARED = [os.path.join(ROOT, '..', 'shared'), '/work/shared']
FIXTURE = next((os.path.join(d, 'fixtures', 'official_tps_tiny.npz') for d in _SHARED
                if os.path.exists(os.path.join(d, 'fixtures'))), os.path.join(_SHARED[0], 'fixtures', 'official_tps_tiny.npz'))
