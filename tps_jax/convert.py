"""Weight formats: official TPS (mmaction) names <-> Flax names, ImageNet Swin-2D inflation.

Only the mapping and the formats; :func:`tps_jax.weights.load_params` works out what a
path holds (workdir, orbax dir, official or ImageNet file) and loads it.

Python API (two lines in a notebook)::

    model, variables = tps_jax.convert.load_official('tps_ssv2.pth', config.model)
    logits, out = model.apply(variables, clip, train=False)   # clip: (B, T, H, W, 3)

CLI (writes an orbax checkpoint that ``config.init_from`` accepts)::

    python -m tps_jax.apps.convert --checkpoint=tps.pth --config=configs/ssv2_tps.py --output=/tmp/tps_init
    python -m tps_jax.apps.convert --checkpoint=swin_tiny_patch4_window7_224.pth --imagenet \
        --config=configs/ssv2_tps.py --output=/tmp/tps_inflated
"""
import io
import os
import pickle
import re
from typing import Any, Dict, Mapping, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np

from tps_jax import models
from tps_jax import workdir as wd
from tps_jax.models import attention

# Buffers of the PyTorch models that are recomputed here, never loaded.
_BUFFERS = re.compile(r'(relative_position_index(_old)?|attn_mask)$')
_BACKBONE, _HEAD = 'backbone.', 'cls_head.fc_cls.'


def load_state_dict(source) -> Dict[str, np.ndarray]:
  """A flat ``{key: np.ndarray}`` from a path (``.pth``/``.pt``/``.npz``) or a dict.

  Accepts the mmaction layout (``{'state_dict': {...}}``), the Swin ImageNet layout
  (``{'model': {...}}``), a bare state dict, and the fixture's ``state_dict/<key>`` npz.
  """
  if isinstance(source, Mapping):
    sd = dict(source)
  else:
    path = os.fspath(source)
    if not wd.exists(path):
      raise FileNotFoundError(f'checkpoint not found: {path}')
    data = io.BytesIO(wd.read_bytes(path)) if wd.is_url(path) else path
    if path.endswith('.npz'):
      with np.load(data, allow_pickle=False) as f:
        sd = {}
        for k in f.files:
          try:
            sd[k] = f[k]
          except ValueError:  # an object array: loading it would run pickled code
            raise ValueError(f'{path}: refused to unpickle {k!r} (it holds Python objects; '
                             'only numeric arrays are read)') from None
    else:
      try:
        import torch  # pylint: disable=g-import-not-at-top
      except ImportError as e:
        raise ImportError(f'reading {path} needs PyTorch (pip install torch, CPU wheel) '
                          'or convert it to .npz first') from e
      try:
        sd = torch.load(data, map_location='cpu', weights_only=True)
      except pickle.UnpicklingError as e:  # PyTorch's text also advises unsafe loading
        detail = re.search(r'((?:Unsupported global|Trying to load unsupported GLOBAL|'
                           r'WeightsUnpickler error)[^\n]*)', str(e))
        raise ValueError(f'{path}: refused to unpickle: '
                         f'{detail.group(1) if detail else type(e).__name__} (only tensors and '
                         'plain containers are read)') from None
  for nest in ('state_dict', 'model'):
    if nest in sd and isinstance(sd[nest], Mapping):
      sd = dict(sd[nest])
  if any(k.startswith('state_dict/') for k in sd):
    sd = {k[len('state_dict/'):]: v for k, v in sd.items() if k.startswith('state_dict/')}
  return {k: np.asarray(v.numpy() if hasattr(v, 'numpy') else v) for k, v in sd.items()}


def _torch_key(path: Tuple[str, ...]) -> str:
  """Flax parameter path -> PyTorch key (official layout)."""
  if path[0] == 'head':
    return _HEAD + {'kernel': 'weight', 'bias': 'bias'}[path[-1]]
  parts = []
  for p in path:
    m = re.fullmatch(r'(layers|blocks)_(\d+)', p)
    parts.append(f'{m.group(1)}.{m.group(2)}' if m else {'kernel': 'weight', 'scale': 'weight'}.get(p, p))
  return _BACKBONE + '.'.join(parts)


def torch_name(path) -> str:
  """The official PyTorch name of a Flax parameter path (``('layers_0', ...)`` or ``'a/b'``)."""
  return _torch_key(tuple(path.split('/')) if isinstance(path, str) else tuple(path))


def _to_flax(value: np.ndarray, target_ndim: int) -> np.ndarray:
  if target_ndim == 5 and value.ndim == 5:  # Conv3d (O, I, T, H, W) -> (T, H, W, I, O)
    return value.transpose(2, 3, 4, 1, 0)
  if target_ndim == 2 and value.ndim == 2 and not value.shape[0] == 0:
    return value.T  # Linear (out, in) -> (in, out); bias tables are handled by the caller
  return value


def official_to_flax(state_dict: Mapping[str, np.ndarray], model_cfg,
                     num_classes: Optional[int] = None, *, strict_head: bool = True,
                     rng=None) -> Tuple[Any, Dict[str, Any]]:
  """Maps an official TPS state dict onto the Flax model of ``model_cfg``.

  Args:
    state_dict: flat dict from :func:`load_state_dict`.
    model_cfg: ``config.model``; must describe the checkpoint's architecture.
    num_classes: classes of the head; default: from ``cls_head.fc_cls.weight``. When the
      checkpoint has no head, or ``strict_head=False`` and its class count differs, the head
      is freshly initialised from ``rng`` (fine-tuning on a new label set).
    strict_head: raise when the checkpoint head does not match ``num_classes``.
    rng: PRNG key for a re-initialised head.

  Returns:
    ``(model, variables)``.

  Raises:
    KeyError / ValueError naming the missing, unexpected or mis-shaped key.
  """
  model, variables, _ = official_to_flax_report(state_dict, model_cfg, num_classes,
                                                 strict_head=strict_head, rng=rng)
  return model, variables


def official_to_flax_report(state_dict: Mapping[str, np.ndarray], model_cfg,
                            num_classes: Optional[int] = None, *, strict_head: bool = True,
                            rng=None) -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
  """:func:`official_to_flax` and what became of each array (what a loader reports).

  Returns:
    ``(model, variables, report)``; ``report``: ``loaded`` / ``reinitialised`` (Flax paths),
    ``ignored`` (stored names), ``source_classes``, ``num_classes``.
  """
  sd = {k: v for k, v in state_dict.items() if not _BUFFERS.search(k)}
  ckpt_classes = sd[_HEAD + 'weight'].shape[0] if _HEAD + 'weight' in sd else None
  num_classes = num_classes or ckpt_classes
  if num_classes is None:
    raise ValueError('the checkpoint has no cls_head.fc_cls.weight: pass num_classes')
  model = models.build_model(model_cfg, num_classes)
  abstract = models.abstract_params(model)
  reinit_head = ckpt_classes is None or (ckpt_classes != num_classes and not strict_head)
  flat = flax.traverse_util.flatten_dict(abstract)
  out, used = {}, set()
  for path, leaf in flat.items():
    key = _torch_key(path)
    if path[0] == 'head' and reinit_head:
      continue
    if key not in sd:
      raise KeyError(f'checkpoint is missing {key} (needed for Flax param {"/".join(path)})')
    value = sd[key]
    if not path[-1] == 'relative_position_bias_table':
      value = _to_flax(value, len(leaf.shape))
    if tuple(value.shape) != tuple(leaf.shape):
      raise ValueError(f'checkpoint {key} has shape {tuple(sd[key].shape)}, the model needs '
                       f'{tuple(leaf.shape)} (after layout change): does config.model match?')
    out[path] = jnp.asarray(value, jnp.float32)
    used.add(key)
  unexpected = sorted(set(sd) - used - ({_HEAD + 'weight', _HEAD + 'bias'} if reinit_head else set()))
  if unexpected:
    raise KeyError(f'checkpoint has unexpected key {unexpected[0]} '
                   f'({len(unexpected)} in all): does config.model match?')
  if reinit_head:
    out.update({('head',) + p: v for p, v in flax.traverse_util.flatten_dict(
        models.init_head(model, rng)).items()})
  report = dict(
      loaded=['/'.join(p) for p in flat if _torch_key(p) in used],
      reinitialised=['/'.join(p) for p in flat if p[0] == 'head' and reinit_head],
      ignored=sorted(set(state_dict) - used), source_classes=ckpt_classes,
      num_classes=num_classes)
  return model, {'params': flax.traverse_util.unflatten_dict(out)}, report


def flax_to_official(variables, *, include_head: bool = True) -> Dict[str, np.ndarray]:
  """The inverse of :func:`official_to_flax`: export to the official key layout."""
  sd = {}
  for path, v in flax.traverse_util.flatten_dict(variables['params']).items():
    if path[0] == 'head' and not include_head:
      continue
    v = np.asarray(v)
    if v.ndim == 5:
      v = v.transpose(4, 3, 0, 1, 2)
    elif v.ndim == 2 and path[-1] != 'relative_position_bias_table':
      v = v.T
    sd[_torch_key(path)] = v
  return sd


def load_official(source, model_cfg, num_classes: Optional[int] = None, **kwargs):
  """``(model, variables)`` from an official checkpoint path or state dict."""
  return official_to_flax(load_state_dict(source), model_cfg, num_classes, **kwargs)


def _resize_table(table: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
  """Bicubic resize of a ``(S*S, heads)`` 2D bias table to ``(size[0]*size[1], heads)``."""
  s = int(round(table.shape[0] ** 0.5))
  grid = table.reshape(s, s, -1)
  out = jax.image.resize(jnp.asarray(grid), (size[0], size[1], grid.shape[-1]), 'bicubic')
  return np.asarray(out).reshape(size[0] * size[1], -1)


def inflate_imagenet(state_dict: Mapping[str, np.ndarray], model_cfg, num_classes: int,
                     rng=None) -> Tuple[Any, Dict[str, Any]]:
  """Inflates a microsoft/Swin-Transformer ImageNet checkpoint into a video model.

  As the official TPS code does: the 2D patch-embedding kernel is repeated over the
  temporal patch size and divided by it (a static clip gives the 2D features), bias tables
  are resized (bicubic) when the window differs and repeated over the temporal rows, and
  the ImageNet classifier is dropped (the head is initialised from ``rng``).
  """
  model, variables, _ = inflate_imagenet_report(state_dict, model_cfg, num_classes, rng)
  return model, variables


def inflate_imagenet_report(state_dict: Mapping[str, np.ndarray], model_cfg, num_classes: int,
                            rng=None) -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
  """:func:`inflate_imagenet` and what became of each array (``ignored``: ImageNet names)."""
  sd = {k: np.asarray(v) for k, v in state_dict.items()
        if not _BUFFERS.search(k) and not k.startswith('head.')}
  pt = model_cfg.patch_size[0]
  wh, ww = model_cfg.window_size[1:]
  rows = attention.bias_table_rows(
      model_cfg.bias, model_cfg.window_size,
      models.temporal_range(model_cfg.arch, model_cfg.shift_pattern))
  spatial = (2 * wh - 1) * (2 * ww - 1)
  inflated = {}
  for k, v in sd.items():
    if k == 'patch_embed.proj.weight':
      v = np.repeat(v[:, :, None], pt, axis=2) / pt
    elif k.endswith('relative_position_bias_table'):
      if v.shape[0] != spatial:
        v = _resize_table(v, (2 * wh - 1, 2 * ww - 1))
      v = np.tile(v, (rows // spatial, 1))
    inflated[_BACKBONE + k] = v
  model, variables, report = official_to_flax_report(inflated, model_cfg, num_classes,
                                                      strict_head=True, rng=rng)
  report['ignored'] = sorted(k for k in state_dict if _BACKBONE + k not in inflated)
  report['source_classes'] = (state_dict['head.weight'].shape[0]
                              if 'head.weight' in state_dict else None)
  return model, variables, report


def save_variables(variables, output: str) -> None:
  """Writes ``variables`` as an orbax checkpoint directory."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(wd.resolve(output), {'params': variables['params']})
  ckptr.wait_until_finished()
