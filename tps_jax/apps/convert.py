r"""Official TPS or ImageNet Swin weights -> an orbax checkpoint that ``config.init_from`` reads.

    python -m tps_jax.apps.convert --config=configs/ssv2_tps.py --checkpoint=tps.pth \
        --output=/tmp/tps_init
    python -m tps_jax.apps.convert --config=configs/ssv2_tps.py --imagenet \
        --checkpoint=swin_tiny_patch4_window7_224.pth --output=/tmp/tps_inflated

The config's ``model`` section must describe the checkpoint (``tps_jax.convert``).
"""
import sys

from absl import flags
from ml_collections import config_flags

from tps_jax import apps
from tps_jax import convert
from tps_jax import models

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'experiment config (its model section is used)', lock_config=True)
_CHECKPOINT = flags.DEFINE_string('checkpoint', None,
                                  'official .pth/.npz, or an ImageNet Swin .pth')
_OUTPUT = flags.DEFINE_string('output', None, 'output orbax checkpoint directory')
_IMAGENET = flags.DEFINE_bool('imagenet', False, 'inflate a 2D ImageNet Swin checkpoint')
_NUM_CLASSES = flags.DEFINE_integer('num_classes', 0,
                                    'head classes (default: from the checkpoint)')
flags.mark_flags_as_required(['config', 'checkpoint', 'output'])


def main(argv):
  del argv
  model_cfg = _CONFIG.value.model
  try:
    sd = convert.load_state_dict(_CHECKPOINT.value)
    if _IMAGENET.value:
      _, variables = convert.inflate_imagenet(sd, model_cfg, _NUM_CLASSES.value or 1000)
    else:
      _, variables = convert.official_to_flax(sd, model_cfg, _NUM_CLASSES.value or None,
                                              strict_head=False)
  except (FileNotFoundError, ValueError, KeyError) as e:
    message = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError quotes str()
    sys.exit(f'convert: {message}')  # one line, no traceback
  convert.save_variables(variables, _OUTPUT.value)
  print(f'wrote {_OUTPUT.value}: {models.count_params(variables["params"]):,} parameters')
  if _IMAGENET.value:  # the ImageNet classifier is dropped: its 2D head has no video meaning
    classes = variables['params']['head']['kernel'].shape[-1]
    print(f'note: the head ({classes} classes) is random, not ImageNet\'s; fine-tuning with '
          'config.init_from replaces it by one for the data set\'s classes')


if __name__ == '__main__':
  apps.run(main, 'convert')
