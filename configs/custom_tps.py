"""TPS fine-tuned on your own videos (the ``custom_videos`` builder: annotation files).

    python -m tps_jax.apps.build --dataset=custom --manual_dir=/data/my_videos \
        --data_dir=$HOME/tensorflow_datasets
    python main.py --config=configs/custom_tps.py --workdir=$WORKDIR \
        --config.dataset.data_dir=$HOME/tensorflow_datasets \
        --config.init_from=swin_tiny_patch4_window7_224.pth

The manual dir holds your videos (or JPEG frame folders) anywhere below it and one
annotation file per split that lists them with their labels: ``train.txt`` /
``val.txt`` (``path label`` lines) or ``train.csv`` / ``val.csv`` (``path,label``), and
optionally ``classes.txt`` (see ``input_pipeline/builders/custom``). The SSv2 recipe
with a centre crop at test; the head is re-initialised for your class count.
"""
from configs import base


def get_config(size: str = 'tiny'):
  config = base.get_config('custom', 'tps', size)
  config.loss.label_smoothing = 0.1
  return config
