"""Baseline for the default run: ``swin2d`` with the recipe of ``synthetic_tps.py``.

    python main.py --config=configs/synthetic_swin2d.py --workdir=workdir/synthetic_swin2d

2D Swin attends within one frame and pools over time: it cannot tell a clip from its
time reversal, so it should stay near 50% validation top-1 (the pair, not the direction).
"""
from configs import synthetic_tps


def get_config():
  return synthetic_tps.get_config('swin2d')
