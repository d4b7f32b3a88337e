"""TPS fine-tuned on your own videos (the ``custom_videos`` builder: one folder per class).

    python main.py --config=configs/custom_tps.py --workdir=$WORKDIR \
        --config.dataset.manual_dir=/data/my_videos \
        --config.init_from=swin_tiny_patch4_window7_224.pth

``manual_dir`` holds your videos (or frame folders) and one annotation list per split,
``train.txt`` / ``val.txt`` (``path label`` lines) or ``.csv`` (see
``input_pipeline/builders/custom``). The SSv2 recipe with a centre crop at test; the
head is re-initialised for your class count.
"""
from configs import base


def get_config(size: str = 'tiny'):
  config = base.get_config('custom', 'tps', size)
  config.loss.label_smoothing = 0.1
  return config
