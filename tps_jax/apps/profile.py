r"""What one config costs per clip: parameters, FLOPs, memory and step time (``tps_jax.profiling``).

    python -m tps_jax.apps.profile --config=configs/ssv2_tps.py --batch=1 --frames=32 \
        --size=224 --json=/tmp/tps.json [--config.model.shift_impl=roll] [--repeats=0]

Prints a Markdown table of every field; ``--repeats=0`` compiles only (parameters, FLOPs,
XLA memory; no times, no RSS).
"""
import json

from absl import flags
from ml_collections import config_flags

from tps_jax import apps
from tps_jax import profiling

_CONFIG = config_flags.DEFINE_config_file('config', None, 'experiment config file',
                                          lock_config=True)
_BATCH = flags.DEFINE_integer('batch', 1, 'clips per step')
_FRAMES = flags.DEFINE_integer('frames', 32, 'frames per clip')
_SIZE = flags.DEFINE_integer('size', 224, 'height = width in pixels')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'timed steps of each kind (0: compile only)')
_WARMUP = flags.DEFINE_integer('warmup', 1, 'untimed steps first')
_NUM_CLASSES = flags.DEFINE_integer('num_classes', profiling.SSV2_CLASSES, 'classifier width')
_TRAIN_STEP = flags.DEFINE_bool('train_step', True, 'also compile and time the train step')
_JSON = flags.DEFINE_string('json', None, 'write every field here as JSON')
flags.mark_flags_as_required(['config'])


def main(argv):
  del argv
  stats = profiling.profile(_CONFIG.value, batch=_BATCH.value, frames=_FRAMES.value,
                            size=_SIZE.value, repeats=_REPEATS.value, warmup=_WARMUP.value,
                            train_step=_TRAIN_STEP.value, num_classes=_NUM_CLASSES.value)
  print(profiling.format_table(stats))
  if _JSON.value:
    with open(_JSON.value, 'w') as f:
      json.dump(stats, f, indent=1)


if __name__ == '__main__':
  apps.run(main, 'profile')
