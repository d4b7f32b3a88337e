"""Baseline for the default run: ``video_swin`` with the recipe of ``synthetic_tps.py``.

    python main.py --config=configs/synthetic_video_swin.py --workdir=workdir/synthetic_video_swin

Video Swin: true 3D (4, 7, 7) windows; it sees time, at a higher cost per clip than TPS.
"""
from configs import synthetic_tps


def get_config():
  return synthetic_tps.get_config('video_swin')
