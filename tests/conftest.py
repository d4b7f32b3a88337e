"""Test-wide setup: the repo root on sys.path and small, fast XLA compiles."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# gs:// through gcsfs, as tps_jax sets it, also when a test touches etils before tps_jax.
os.environ.setdefault('EPATH_USE_TF', 'false')
# Tests run tiny models a few times: XLA's optimisation passes cost more than they save
# (about 2x faster compiles). Set before jax is imported; subprocesses inherit it.
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')
# Entry points re-execute themselves with huge-page malloc (tps_jax/host.py); subprocesses
# the tests start already have it (no second start), or opted out, as the user had it.
if os.environ.get('TPS_JAX_TUNE_HOST') != '0':
  os.environ.setdefault('GLIBC_TUNABLES', 'glibc.malloc.hugetlb=1')

# The official PyTorch fixture lives in ../shared beside the checkout; TPS_SHARED_DIR
# points elsewhere (a CI machine that clones to another place sets it in .ci/run).
SHARED = os.environ.get('TPS_SHARED_DIR') or os.path.join(ROOT, '..', 'shared')
FIXTURE = os.path.join(SHARED, 'fixtures', 'official_tps_tiny.npz')


def fixture_config():
  """configs/test.py with the model of the official fixture (10 classes, 4x112x112 clips)."""
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  config = test_config.get_config()
  m, c = config.model, config.input
  m.embed_dim, m.depths, m.num_heads = 16, (2, 2, 2), (1, 2, 4)
  c.num_frames, c.image_size, c.eval_image_size, c.min_resize = 4, 112, 112, 128
  return config


def prepare_tiny(data_dir):
  """Renders `reversal_pairs/tiny` into ``data_dir`` as main.py would; returns the dir."""
  from configs import data_table  # pylint: disable=g-import-not-at-top
  from input_pipeline import build  # pylint: disable=g-import-not-at-top
  dataset = data_table.dataset_config('synthetic_tiny')
  dataset.data_dir = data_dir
  build.prepare(dataset)
  return data_dir


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
  """A TFDS data dir holding the prepared `reversal_pairs/tiny` (40/20/20 clips)."""
  return prepare_tiny(str(tmp_path_factory.mktemp('tfds')))


@pytest.fixture(scope='session')
def data_dir(tiny_data_dir):
  """``reversal_pairs/tiny``: the data of the ``main.py`` runs."""
  return tiny_data_dir


@pytest.fixture(scope='session')
def reference_run(tmp_path_factory, data_dir):
  """An uninterrupted ``main.py`` run: the baseline of the resume tests (read only)."""
  from tests.main_runs import RESUME_FLAGS, run_main  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp('reference'))
  rc, _, err = run_main(workdir, data_dir, *RESUME_FLAGS)
  assert rc == 0, err[-3000:]
  return workdir


@pytest.fixture(scope='session')
def gcs_server(tmp_path_factory):
  """A fake-gcs-server with bucket ``gcs_emulator.BUCKET`` (and the proxy that brings
  TensorFlow's GCS client to it). It fails (not skips) if it cannot start. It leaves
  ``os.environ`` alone: its ``env`` (a proxy, a CA bundle) would reach every later
  subprocess of the session, pip's included; ``gcs`` and ``environ()`` set it for a while."""
  from tests import gcs_emulator  # pylint: disable=g-import-not-at-top
  directory = tmp_path_factory.mktemp('gcs')
  emulator = gcs_emulator.Emulator(str(directory / 'root'))
  proxy = gcs_emulator.TensorFlowProxy(emulator.url, directory)
  emulator.env = dict(gcs_emulator.env(emulator.url), **proxy.env())
  yield emulator
  proxy.stop()
  emulator.stop()


@pytest.fixture
def gcs(gcs_server, monkeypatch):
  """``gcs_server`` with its ``env`` in this process for one test (and its subprocesses)."""
  for k, v in gcs_server.env.items():
    monkeypatch.setenv(k, v)
  return gcs_server
