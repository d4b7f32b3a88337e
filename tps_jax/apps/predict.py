r"""Top-k classes of your videos from a trained (``main.py``) or converted checkpoint.

    python -m tps_jax.apps.predict --config=configs/custom_tps.py --checkpoint=$WORKDIR \
        --video=clip.mp4 [--video=more.webm ...] [--labels=classes.txt] \
        [--output=preds.jsonl] [--batch=8] [--top_k=5] [--skip_unreadable] [clips/*.mp4]
    python -m tps_jax.apps.predict --config=configs/ssv2_tps.py --checkpoint=tps_sthv2.pth \
        --labels=labels.json --video=clip.webm

Videos are scored as ``main.py --mode=evaluate`` scores the data set's clips
(``tps_jax.predict``). ``--checkpoint``: a ``main.py`` workdir (its latest checkpoint), an
orbax directory of ``python -m tps_jax.apps.convert``, or an official ``.pth`` / ``.npz``.
Class names: ``--labels`` (one name per line, as a builder's ``classes.txt``; or JSON, a
list or SSv2's ``labels.json`` {name: index}), else those of the config's data set if it
is prepared, else the class indices.
"""
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import tqdm

from input_pipeline import video_io
from tps_jax import apps
from tps_jax import models
from tps_jax import predict
from tps_jax import weights
from tps_jax import workdir as wd

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'experiment config (model, test views, data set)', lock_config=True)
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', None, 'main.py workdir, converted orbax dir, or official .pth/.npz')
_VIDEO = flags.DEFINE_multi_string(
    'video', None, 'video file or JPEG frame folder (repeatable; paths after the flags '
    'count too)')
_LABELS = flags.DEFINE_string(
    'labels', None, 'class names: one per line, or JSON (list or {name: index}); '
    'default: the data set\'s')
_OUTPUT = flags.DEFINE_string('output', None, 'write the predictions here as JSON lines')
_BATCH = flags.DEFINE_integer('batch', 1, 'videos per forward pass')
_TOP_K = flags.DEFINE_integer('top_k', 5, 'classes printed per video')
_SKIP = flags.DEFINE_bool('skip_unreadable', False, 'skip (and count) unreadable videos '
                          'instead of stopping')
flags.mark_flags_as_required(['config', 'checkpoint'])


def _message(e: Exception) -> str:
  return e.args[0] if isinstance(e, KeyError) and e.args else str(e)  # KeyError quotes str()


def _predictor(config) -> predict.Predictor:
  """:meth:`predict.Predictor.load`, but what is wrong with the checkpoint is said as
  ``--checkpoint: ...`` (the library names the path, not the flag)."""
  models.validate(config.model, config.input.num_frames, config.input.eval_image_size)
  wd.check_storage(_CHECKPOINT.value, '--checkpoint')
  try:
    params, provenance = weights.load_params(_CHECKPOINT.value, config.model, None)
  except (FileNotFoundError, ValueError, KeyError, ImportError) as e:
    raise ValueError(f'--checkpoint: {_message(e)}') from None
  model = models.build_model(config.model, provenance.num_classes)
  try:
    names = predict.class_names(config, model.num_classes, _LABELS.value)
  except (FileNotFoundError, ValueError) as e:
    raise ValueError(f'--labels: {_message(e)}' if _LABELS.value else
                     f'{_message(e)} (--labels)') from None
  return predict.Predictor(config, model, params, names)


def _format(p: predict.Prediction) -> str:
  if p.error:
    return f'{p.video}: skipped: {p.error}'
  return p.video + ''.join(f'\n  {prob:.3f}  {label}' for prob, label in zip(p.probs, p.labels))


def main(argv):
  videos = list(_VIDEO.value or []) + argv[1:]  # --video=a.mp4 and/or positional (clips/*.mp4)
  if not videos:
    raise app.UsageError('no video: pass --video=PATH or paths after the flags')
  # The predictions are the output: no library warnings (e.g. orbax on read-only dirs).
  logging.set_verbosity(logging.ERROR)
  missing = [v for v in videos if not os.path.exists(v)]
  if missing and not _SKIP.value:  # before the (slow) checkpoint load
    sys.exit(f'predict: no such video file or frame folder: {missing[0]}')
  if _BATCH.value < 1 or _TOP_K.value < 1:
    sys.exit(f'predict: --batch={_BATCH.value} and --top_k={_TOP_K.value} must be >= 1')
  out = open(_OUTPUT.value, 'w', encoding='utf-8') if _OUTPUT.value else None  # pylint: disable=consider-using-with
  skipped = 0
  try:
    predictor = _predictor(_CONFIG.value)
    for p in predictor.predict(videos, batch_size=_BATCH.value, top_k=_TOP_K.value,
                               skip_unreadable=_SKIP.value, progress=None):
      skipped += p.error is not None
      tqdm.tqdm.write(_format(p), file=sys.stderr if p.error else sys.stdout)
      if out:
        out.write(p.to_json() + '\n')
        out.flush()
  except (video_io.VideoReadError, FileNotFoundError, ValueError, KeyError) as e:
    sys.exit(f'predict: {_message(e)}')  # one line, no traceback
  finally:
    if out:
      out.close()
  if skipped:
    print(f'predict: skipped {skipped} of {len(videos)} videos (unreadable)',
          file=sys.stderr)


if __name__ == '__main__':
  apps.run(main, 'predict')
