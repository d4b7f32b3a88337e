"""The CI guard: a shortened demo must still tell the direction of time, by the measured margin.

The demo's headline once moved 10 points unnoticed. A from-scratch run on a CPU is
deterministic on one machine but moves like a change of seed under any change of float
rounding, so a fixed expected number would be a tuned threshold. Instead the bound comes
from the seed spread measured by ``scripts/synthetic_results.py --table=guard``
(``docs/guard.json``): TPS's direction accuracy (within the right time-reversal pair) must
reach its mean over seeds minus ``K_STD`` standard deviations, and that bound must clear
what a frame-order-blind model (Swin-2D) reaches over seeds by as much again.
"""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tps_jax import evaluation
from tps_jax import visualize

CONFIG = 'configs/synthetic_guard.py'
K_STD = 3.0  # a fresh seed falls below mean - 3 std about once in 700 runs (normal tails)


def guard_bound():
  """``(bound, measured)`` from docs/guard.json: TPS mean - K_STD std of direction."""
  with open(os.path.join(ROOT, 'docs', 'guard.json')) as f:
    rows = {r['name']: r['direction_accuracy'] for r in json.load(f)['rows']}
  tps, blind = rows['tps'], rows['swin2d']
  return tps['mean'] - K_STD * tps['std'], (tps, blind)


def test_guard_bound_separates_tps_from_a_frame_order_blind_model():
  bound, (tps, blind) = guard_bound()
  assert bound > blind['mean'] + K_STD * blind['std'], (
      f'docs/guard.json: TPS direction {tps} and Swin-2D {blind} overlap within {K_STD} std: '
      'the guard cannot tell a broken TPS from a working one; lengthen the guard config')


@pytest.mark.slow
def test_shortened_demo_tells_the_direction_of_time(tmp_path):
  bound, (tps, _) = guard_bound()
  workdir = tmp_path / 'run'
  env = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='3')
  cmd = [sys.executable, 'main.py', f'--config={CONFIG}', f'--workdir={workdir}',
         f'--config.dataset.data_dir={tmp_path / "tfds"}', '--config.seed=0']
  result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  counts, _ = visualize.read_confusion(str(workdir / 'confusion_validation.csv'))
  direction = evaluation.reversal_pair_scores(counts)['direction']
  assert direction >= bound, (
      f'TPS direction accuracy {direction:.3f} < {bound:.3f} (mean {tps["mean"]:.3f} - '
      f'{K_STD:g} x std {tps["std"]:.3f} over {len(tps["values"])} seeds, docs/guard.json)')
