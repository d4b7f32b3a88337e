"""One way to load weights: whatever a path holds, as the parameters of ``config.model``.

::

    params, provenance = weights.load_params(path, config.model, num_classes, rng=rng)
    logging.info(provenance.describe())

``path`` (local or ``gs://``, read through :mod:`tps_jax.workdir`) is one of

* a ``main.py`` workdir (its newest good checkpoint, parameters only) or its
  ``checkpoints`` / ``checkpoints_best`` directory: read in Flax names, as trained;
* an orbax directory of ``python -m tps_jax.apps.convert``: Flax names too;
* an official TPS ``.pth`` / ``.npz``: mmaction names, mapped by :mod:`tps_jax.convert`;
* an ImageNet Swin-2D ``.pth`` / ``.npz`` (``layers.*`` names): inflated to video.

``config.init_from`` (training, ``--mode=evaluate``) and ``--checkpoint`` (predict) both
come here. Errors are one line naming the path and the cause; each caller adds the flag
that gave the path.
"""
import dataclasses
import os
import types
from typing import Any, Dict, List, Optional, Tuple

import flax
import numpy as np

from tps_jax import checkpoints
from tps_jax import convert
from tps_jax import models
from tps_jax import workdir as wd


@dataclasses.dataclass
class Provenance:
  """What :func:`load_params` read and what became of each stored array.

  ``loaded`` and ``reinitialised`` are Flax parameter paths (``layers_0/blocks_0/...``),
  ``ignored`` the stored names that were not used (a classifier of another class count,
  ImageNet's classifier, index buffers that are recomputed). Training writes it to
  ``init.json`` (:func:`dataclasses.asdict`).
  """
  source: str                     # the path as given
  kind: str                       # workdir | orbax | official (converted) | imagenet (inflated)
  step: Optional[int]             # of a workdir's checkpoint
  source_classes: Optional[int]   # classes of the stored head (None: no head)
  num_classes: int
  loaded: List[str]
  reinitialised: List[str]
  ignored: List[str]

  def describe(self) -> str:
    """One line for the log: source, loaded arrays by top-level module, and every
    re-initialised / ignored name."""
    where = f'{self.kind} {self.source}' + (f' (step {self.step})' if self.step is not None else '')
    groups: Dict[str, int] = {}
    for path in self.loaded:
      groups[path.split('/')[0]] = groups.get(path.split('/')[0], 0) + 1
    text = (f'weights from {where}: loaded {len(self.loaded)} arrays ('
            + ', '.join(f'{k}/* {n}' for k, n in sorted(groups.items())) + ')')
    if self.reinitialised:
      why = (f'{self.source_classes} classes there, {self.num_classes} here'
             if self.source_classes else 'no classifier there')
      text += f'; re-initialised {", ".join(self.reinitialised)} ({why})'
    if self.ignored:
      text += f'; ignored {len(self.ignored)}: {", ".join(self.ignored)}'
    return text


def load_params(path, model_config, num_classes: Optional[int], *, rng=None
                ) -> Tuple[Any, Provenance]:
  """The parameters of ``model_config``'s model from whatever ``path`` holds.

  Args:
    path: a workdir, orbax directory, official or ImageNet file (module docstring).
    model_config: ``config.model``; must describe the stored architecture.
    num_classes: classes of the head. A stored head of another class count, or none, is
      replaced by a new one from ``rng`` (fine-tuning on another label set). None: the
      stored classifier as it is (inference): ``path`` must hold one, and a workdir must
      have been trained with ``model_config``.
    rng: PRNG key of a new head (default ``jax.random.key(0)``).

  Returns:
    ``(params, provenance)``: the ``params`` collection (host or device arrays; the head
    has ``provenance.num_classes`` classes) and a :class:`Provenance`.

  Raises:
    FileNotFoundError, ValueError, KeyError, ImportError: one line naming ``path``.
  """
  path = os.fspath(path)
  if not wd.exists(path):
    raise FileNotFoundError(f'no such checkpoint: {path}')
  if wd.isdir(path):
    return _load_dir(path, model_config, num_classes, rng)
  return _load_file(path, model_config, num_classes, rng)


def _load_dir(path: str, model_config, num_classes, rng) -> Tuple[Any, Provenance]:
  """A workdir or an orbax directory: the stored names are Flax's, used as they are."""
  step = None
  if wd.isdir(wd.join(path, wd.CHECKPOINTS)) or checkpoints.is_checkpoint_dir(path):
    if num_classes is None:  # its predictions only mean something on the model it trained
      _check_trained_with(path, model_config)
    stored, meta = checkpoints.restore_params(path)  # verified; host arrays
    kind, step = 'workdir', meta['step']
  else:
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    try:
      stored = ocp.StandardCheckpointer().restore(wd.resolve(path))['params']
    except FileNotFoundError:  # orbax's words name its _METADATA file
      raise FileNotFoundError(f'{path} holds no checkpoint (neither a main.py workdir nor '
                              'an orbax directory of tps_jax.apps.convert)') from None
    kind = 'orbax'
  params, report = _fit(stored, path, model_config, num_classes, rng)
  return params, Provenance(source=path, kind=kind, step=step, **report)


def _check_trained_with(path: str, model_config) -> None:
  """The stored ``config.model`` against ``model_config`` (a field that differs is named)."""
  try:  # check_workdir reads only config.model
    checkpoints.check_workdir(path, types.SimpleNamespace(model=model_config))
  except ValueError as e:  # its advice is for training; here the config is what is wrong
    raise ValueError(str(e).replace('use a new --workdir',
                                    'pass the config it was trained with')) from None


def _classes(path: str, num_classes: Optional[int], stored: Optional[int], head: str) -> int:
  """``num_classes``, else the stored head's; a path without a classifier has none."""
  if num_classes is None and stored is None:
    raise ValueError(f'{path} has no classifier ({head}): an ImageNet or backbone-only '
                     'checkpoint cannot predict video classes')
  return stored if num_classes is None else num_classes


def _fit(stored, path: str, model_config, num_classes, rng) -> Tuple[Any, Dict[str, Any]]:
  """Flax-named ``stored`` params checked against the model's, with a new head when the
  class count differs (the report of :class:`Provenance`)."""
  have = flax.traverse_util.flatten_dict(stored, sep='/')
  source_classes = have['head/kernel'].shape[-1] if 'head/kernel' in have else None
  model = models.build_model(model_config,
                             _classes(path, num_classes, source_classes, 'head/kernel'))
  want = flax.traverse_util.flatten_dict(models.abstract_params(model), sep='/')
  new_head = source_classes != model.num_classes
  fresh = sorted(n for n in want if new_head and n.startswith('head/'))
  ignored = sorted(n for n in have if new_head and n.startswith('head/'))
  for name in sorted((set(want) | set(have)) - set(fresh) - set(ignored)):  # the first difference
    if name not in have:
      raise KeyError(f'{path} has no {name}, which the model needs: does config.model match?')
    if name not in want:
      raise KeyError(f'{path} has {name}, which the model does not: does config.model match?')
    if tuple(have[name].shape) != tuple(want[name].shape):
      raise ValueError(f'{path}: {name} has shape {tuple(have[name].shape)}, the model needs '
                       f'{tuple(want[name].shape)}: does config.model match?')
  params = {n: np.asarray(have[n]) for n in want if n not in fresh}
  if new_head:
    params.update(flax.traverse_util.flatten_dict({'head': models.init_head(model, rng)},
                                                  sep='/'))
  return flax.traverse_util.unflatten_dict(params, sep='/'), dict(
      loaded=[n for n in want if n not in fresh], reinitialised=fresh, ignored=ignored,
      source_classes=source_classes, num_classes=model.num_classes)


def _load_file(path: str, model_config, num_classes, rng) -> Tuple[Any, Provenance]:
  """An official or ImageNet ``.pth`` / ``.npz``: PyTorch names, converted (or inflated)."""
  sd = convert.load_state_dict(path)  # its errors name the path
  imagenet = any(k.startswith('layers.') for k in sd)  # microsoft/Swin-Transformer names
  head = convert.torch_name(('head', 'kernel'))
  stored = None if imagenet or head not in sd else sd[head].shape[0]
  num_classes = _classes(path, num_classes, stored, head)
  try:
    if imagenet:
      _, variables, report = convert.inflate_imagenet_report(sd, model_config, num_classes, rng)
    else:
      _, variables, report = convert.official_to_flax_report(
          sd, model_config, num_classes, strict_head=False, rng=rng)
  except (KeyError, ValueError) as e:  # they name the key; add the file
    raise type(e)(f'{path}: {e.args[0] if e.args else e}') from None
  kind = 'imagenet' if imagenet else 'official'
  return variables['params'], Provenance(source=path, kind=kind, step=None, **report)
