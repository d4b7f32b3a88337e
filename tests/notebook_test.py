"""Executes notebooks/tps_quickstart.ipynb headless with a shrunken budget (nbclient)."""
import json
import os
import re
import subprocess
import sys

import nbformat
from nbclient import NotebookClient
import pytest

from tests.conftest import FIXTURE, ROOT

NOTEBOOK = os.path.join(ROOT, 'notebooks', 'tps_quickstart.ipynb')


def _with_parameters(nb, **params):
  """Papermill-style: a cell after the one tagged 'parameters' overrides its values."""
  index = next(i for i, c in enumerate(nb.cells) if 'parameters' in c.metadata.get('tags', []))
  source = '\n'.join(f'{k} = {v!r}' for k, v in params.items())
  nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
  return nb


def test_notebook_is_committed_without_outputs():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  code = [c for c in nb.cells if c.cell_type == 'code']
  assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_quickstart_notebook_runs_end_to_end(tmp_path):
  nb = _with_parameters(nbformat.read(NOTEBOOK, as_version=4), DATASET='synthetic_tiny',
                        TRAIN_STEPS=3, DATA_DIR=str(tmp_path / 'tfds'),
                        WORKDIR=str(tmp_path / 'work'), EXPORT_DIR=str(tmp_path / 'png'),
                        FIXTURE=FIXTURE)
  client = NotebookClient(nb, timeout=900, kernel_name='python3',
                          resources={'metadata': {'path': os.path.dirname(NOTEBOOK)}})
  client.execute()  # raises CellExecutionError naming the failing cell
  outputs = ''.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code' for o in c.outputs)
  assert 'TPS / 2D Swin forward FLOPs' in outputs
  error = re.search(r'max \|official - ours\| on the logits: (\S+)', outputs)
  assert error and float(error.group(1)) < 1e-4, outputs[-2000:]
  assert 'attention mass per source frame' in outputs
  assert sorted(os.listdir(tmp_path / 'png')) == [
      'notebook_attention.png', 'notebook_clips.png', 'notebook_curves.png', 'notebook_mosaic.png']


@pytest.mark.slow
def test_setup_cell_keeps_the_runtimes_jax(tmp_path):
  """Colab's case: jax/jaxlib already installed (here 0.10.1, not the lock's 0.10.2).

  The setup cell runs in a fresh venv holding only them; pip resolves what it would install
  (``PIP_DRY_RUN``, ``PIP_REPORT``: pip's own environment options) and jax is not among it.
  """
  venv = tmp_path / 'venv'
  subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
  python = str(venv / 'bin' / 'python')
  pip = [python, '-m', 'pip', 'install', '-q']
  # setuptools + wheel in the venv: the dry run builds the checkout's metadata without an
  # isolated build env (whose own install would inherit PIP_DRY_RUN and do nothing).
  subprocess.run(pip + ['jax==0.10.1', 'jaxlib==0.10.1', 'setuptools', 'wheel'], check=True)
  cell = nbformat.read(NOTEBOOK, as_version=4).cells[1].source
  report = tmp_path / 'report.json'
  env = dict(os.environ, PIP_DRY_RUN='1', PIP_REPORT=str(report),
             PIP_NO_BUILD_ISOLATION='false')
  out = subprocess.run([python, '-c', cell], cwd=os.path.dirname(NOTEBOOK), env=env,
                       capture_output=True, text=True, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'keeping jax==0.10.1, jaxlib==0.10.1' in out.stdout
  names = {i['metadata']['name'].lower().replace('_', '-')
           for i in json.loads(report.read_text())['install']}
  assert 'flax' in names and 'tensorflow-datasets' in names  # what is missing comes
  assert not names & {'jax', 'jaxlib'}, sorted(names)        # the runtime's jax stays
