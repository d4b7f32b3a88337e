"""The CI guard: a shortened demo must still tell the direction of time, by the measured margin.

The demo's headline once moved 10 points unnoticed. A from-scratch run on a CPU is
deterministic on one machine but moves like a change of seed under any change of float
rounding, so a fixed expected number would be a tuned threshold. Instead the bound comes
from the seed spread measured by ``scripts/synthetic_results.py --table=guard --seeds=5``
(``docs/guard.json``). The CI machine's run is one more draw from that distribution, so the
bound is the one-sided 99% prediction bound of n seeds, ``mean - t(0.99, n-1) * std *
sqrt(1 + 1/n)``, for TPS's direction accuracy (within the right time-reversal pair); the
same bound taken upwards for a frame-order-blind model (Swin-2D) must lie below it, or the
guard could not tell a broken TPS from a working one.
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
CONFIDENCE = 0.99  # one-sided: a healthy CI run fails about once in 100 machine changes


def prediction_margin(s: dict) -> float:
  return evaluation.prediction_margin(s['values'], CONFIDENCE)


def measured():
  """Direction accuracy over seeds of TPS and Swin-2D (docs/guard.json)."""
  with open(os.path.join(ROOT, 'docs', 'guard.json')) as f:
    rows = {r['name']: r['direction_accuracy'] for r in json.load(f)['rows']}
  return rows['tps'], rows['swin2d']


def test_guard_bound_separates_tps_from_a_frame_order_blind_model():
  tps, blind = measured()
  low, high = tps['mean'] - prediction_margin(tps), blind['mean'] + prediction_margin(blind)
  assert low > high, (
      f'docs/guard.json: TPS direction {tps} (bound {low:.3f}) and Swin-2D {blind} (bound '
      f'{high:.3f}) overlap: the guard could not tell a broken TPS; lengthen its config')


@pytest.mark.slow
def test_shortened_demo_tells_the_direction_of_time(tmp_path):
  tps, _ = measured()
  bound = tps['mean'] - prediction_margin(tps)
  workdir = tmp_path / 'run'
  env = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='3')
  cmd = [sys.executable, 'main.py', f'--config={CONFIG}', f'--workdir={workdir}',
         f'--config.dataset.data_dir={tmp_path / "tfds"}', '--config.seed=0']
  result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  counts, _ = visualize.read_confusion(str(workdir / 'confusion_validation.csv'))
  direction = evaluation.reversal_pair_scores(counts)['direction']
  assert direction >= bound, (
      f'TPS direction accuracy {direction:.3f} < {bound:.3f}, the {CONFIDENCE:.0%} prediction '
      f'bound of its {len(tps["values"])} seeds (mean {tps["mean"]:.3f}, std '
      f'{tps["std"]:.3f}; docs/guard.json)')
