"""Test-wide setup: the repo root on sys.path and small, fast XLA compiles."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

FIXTURE = os.path.join(ROOT, '..', 'shared', 'fixtures', 'official_tps_tiny.npz')
