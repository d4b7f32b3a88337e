"""TPS on Diving-48 (V2 labels), the official recipe (swin_tiny_2D_patch244_tps_diving48_1k).

    python main.py --config=configs/diving48_tps.py --workdir=$WORKDIR \
        --config.dataset.manual_dir=/data/diving48 --config.init_from=workdir/k400_tps_t

Model size after the colon (``:base``). Label smoothing 0.02, evaluated on the test split
(1 clip x 3 crops); should reach the paper's TPS top-1 on Diving-48.
"""
from configs import base


def get_config(size: str = 'tiny'):
  config = base.get_config('diving48', 'tps', size)
  config.loss.label_smoothing = 0.02
  return config
