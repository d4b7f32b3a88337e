"""The profiling CLI on a tiny config, and the FLOPs claim of TPS (shifts move data only)."""
import json
import os
import subprocess
import sys

import pytest

from configs import test as test_config
from tps_jax import profiling

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_cli_writes_every_field_to_json(tmp_path):
  out = tmp_path / 'profile.json'
  env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS='1', JAX_PLATFORMS='cpu')
  proc = subprocess.run(
      [sys.executable, '-m', 'tps_jax.apps.profile', '--config=configs/test.py', '--batch=2',
       '--frames=8', '--size=28', '--repeats=1', f'--json={out}'],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert '| forward_gflops |' in proc.stdout
  stats = json.loads(out.read_text())
  assert set(stats) == set(profiling.FIELDS)
  measured_everywhere = [k for k in profiling.FIELDS if k not in ('train_xla_peak_bytes',
                                                                  'train_rss_peak_bytes')]
  assert [k for k in measured_everywhere if stats[k] is None] == []
  for key in ('params', 'forward_gflops', 'train_gflops', 'forward_memory_bytes',
              'train_memory_bytes', 'train_temp_bytes', 'forward_time_s', 'train_time_s'):
    assert stats[key] > 0, key
  assert stats['train_gflops'] > 2 * stats['forward_gflops']  # backward costs ~2 forwards
  assert len(stats['train_times_s']) == 1
  assert stats['tokens'] == [4, 7, 7]
  assert stats['train_step'] == 'tps_jax.steps.train_step'
  if sys.platform.startswith('linux'):
    assert stats['train_rss_peak_bytes'] is not None


def test_tps_flops_equal_2d_swin_flops():
  kwargs = dict(batch=1, frames=8, size=28, repeats=0, train_step=False)
  tps = profiling.profile(test_config.get_config('tps'), **kwargs)
  swin2d = profiling.profile(test_config.get_config('swin2d'), **kwargs)
  assert tps['forward_gflops'] == pytest.approx(swin2d['forward_gflops'], rel=1e-3)
  assert tps['params'] > swin2d['params']  # only the larger TPS bias tables differ
