"""TPS on Something-Something V1, the official recipe (swin_tiny_2D_patch244_tps_sthv1_1k).

    python main.py --config=configs/ssv1_tps.py --workdir=$WORKDIR \
        --config.dataset.manual_dir=/data/ssv1 --config.init_from=workdir/k400_tps_t

Model size after the colon (``:base``). As SSv2: 30 epochs, label smoothing 0.1, flips
that never flip the left/right classes, 1 clip x 3 crops at test; should reach the
paper's TPS top-1 on SSv1.
"""
from configs import base


def get_config(size: str = 'tiny'):
  config = base.get_config('ssv1', 'tps', size)
  config.loss.label_smoothing = 0.1
  return config
