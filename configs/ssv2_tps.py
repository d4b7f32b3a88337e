"""TPS on Something-Something V2, the official recipe (swin_tiny_2D_patch244_tps_sthv2_1k).

    python -m tps_jax.apps.build --dataset=ssv2 --manual_dir=/data/ssv2 \
        --data_dir=$HOME/tensorflow_datasets
    python main.py --config=configs/ssv2_tps.py --workdir=$WORKDIR \
        --config.dataset.data_dir=$HOME/tensorflow_datasets --config.init_from=workdir/k400_tps_t

The build (once, hours for the 220k videos; a stopped build resumes) reads the release
as downloaded: ``20bn-something-something-v2/<id>.webm`` and the
``something-something-v2-{labels,train,validation}.json`` files. ``main.py`` can also
prepare it itself when given ``--config.dataset.manual_dir=/data/ssv2``.

Model size after the colon: ``configs/ssv2_tps.py:base`` (tiny | small | base | large).
``init_from``: the Kinetics-400 TPS run's workdir (as the paper; README "Reproducing the
paper"), a released K400 TPS .pth, or ``scratch``; without it the run stops. 30 epochs
of 32 frames at 224 px, 1 clip x 3 crops at test; should
reach the paper's TPS top-1 on SSv2 (Xiang et al., ECCV 2022) on a 64-video batch.
"""
from configs import base


def get_config(size: str = 'tiny'):
  config = base.get_config('ssv2', 'tps', size)
  config.loss.label_smoothing = 0.1
  return config
