"""TPS on Kinetics-400, the official recipe (swin_tiny_2D_patch244_tps_k400_1k).

    python main.py --config=configs/k400_tps.py --workdir=$WORKDIR \
        --config.dataset.manual_dir=/data/k400 \
        --config.init_from=swin_tiny_patch4_window7_224.pth   # ImageNet Swin, inflated

Model size after the colon (``:base``). 32 frames 2 apart, no label smoothing, 4 clips x
3 crops at test with softmax averaging; should reach the paper's TPS top-1 on K400.
"""
from configs import base


def get_config(size: str = 'tiny'):
  return base.get_config('k400', 'tps', size)
