"""Baseline for the default run: ``tsm`` with the recipe of ``synthetic_tps.py``.

    python main.py --config=configs/synthetic_tsm.py --workdir=workdir/synthetic_tsm

TSM-Swin: the channel shift in every block instead of the patch shift; it sees time, so
it should clearly beat 50%.
"""
from configs import synthetic_tps


def get_config():
  return synthetic_tps.get_config('tsm')
