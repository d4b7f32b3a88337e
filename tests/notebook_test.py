"""Executes notebooks/tps_quickstart.ipynb headless with a shrunken budget (nbclient)."""
import os
import re

import nbformat
from nbclient import NotebookClient

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
