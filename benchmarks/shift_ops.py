"""Cost of the TPS shift operators as a fraction of a block's time, gather vs roll.

For every stage of TPS-T at one clip shape, times (interleaved, median of ``--repeats``):
the Swin block without a temporal operator, the same block with the patch shift (each
implementation) or the channel shift, and the operators alone (patch shift + its inverse, as
a block applies them; channel shift), forward and forward+backward. Writes Markdown::

  python benchmarks/shift_ops.py --frames=32 --size=224 --repeats=5 --out=docs/shift_ops.md

Implementations: ``gather`` and ``roll`` of ``tps_jax/shifts.py`` (the gather's VJP is the
inverse gather: the shift is a permutation), and ``gather-autodiff``, the same gather with the
VJP JAX derives (a scatter-add), kept here to show what that custom VJP buys.
"""
import contextlib
import functools
import os
import statistics
import sys
from typing import Dict

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import base, model_table  # pylint: disable=g-import-not-at-top
from tps_jax import profiling, shifts  # pylint: disable=g-import-not-at-top
from tps_jax.models import swin  # pylint: disable=g-import-not-at-top
from tps_jax import apps  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
flags.DEFINE_integer('frames', 32, 'frames per clip')
flags.DEFINE_integer('size', 224, 'frame size')
flags.DEFINE_integer('batch', 1, 'clips per batch')
flags.DEFINE_integer('repeats', 5, 'timed rounds per block')
flags.DEFINE_multi_integer('stages', [0, 1, 2, 3], 'stages to time (repeat the flag)')
flags.DEFINE_integer('model_repeats', 5, 'rounds of whole-model steps per implementation (0: skip)')
flags.DEFINE_string('out', 'docs/shift_ops.md', 'Markdown to write')
flags.DEFINE_string('cache_dir', '/tmp/tps_jax_xla_cache', "XLA's persistent compilation cache ('' = off)")

_patch_shift = shifts.patch_shift


def _gather_autodiff(x, pattern, window_hw, inverse):
  """The static gather of ``shifts.patch_shift`` without its custom VJP (JAX's own VJP of a
  gather is a scatter-add): the reference for why the module defines one."""
  _, t, h, w, _ = x.shape
  offsets = shifts.pattern_offsets(pattern, window_hw, (h, w))
  src = (np.arange(t)[:, None, None] - (-offsets if inverse else offsets)[None]) % t
  return x[:, src, np.arange(h)[None, :, None], np.arange(w)[None, None, :]]


def patch_shift_impl(x, pattern, window_hw, *, inverse=False, impl='gather'):
  """``shifts.patch_shift`` with the extra impl ``'gather-autodiff'``."""
  if impl == 'gather-autodiff':
    return _gather_autodiff(x, pattern, window_hw, inverse)
  return _patch_shift(x, pattern, window_hw, inverse=inverse, impl=impl)


@contextlib.contextmanager
def _impls_installed():
  """Lets ``SwinBlock(shift_impl='gather-autodiff')`` run by swapping the module function."""
  shifts.patch_shift = patch_shift_impl
  try:
    yield
  finally:
    shifts.patch_shift = _patch_shift


IMPLS = ('gather', 'roll', 'gather-autodiff')


def _block(temporal_op, heads, odd, impl='gather'):
  m = model_table.model_config('tps', 'tiny')
  window = tuple(m.window_size)
  cfg = swin.BlockConfig(window_cfg=window, bias_mode='relative', pattern=model_table.PATTERN_C,
                         temporal_range=swin.temporal_range('tps', model_table.PATTERN_C),
                         channel_shift_div=m.channel_shift_div, shift_impl=impl)
  return swin.SwinBlock(num_heads=heads, cfg=cfg, temporal_op=temporal_op,
                        shift_cfg=tuple(k // 2 for k in window) if odd else (0, 0, 0))


def _fwd_and_grad(fn, params, x):
  """Zero-argument forward and forward+backward calls of ``fn(params, x)``."""
  fwd = jax.jit(fn)
  grad = jax.jit(jax.grad(lambda p, x: jnp.sum(fn(p, x) * x), argnums=(0, 1)))
  return functools.partial(fwd, params, x), functools.partial(grad, params, x)


def stage_calls(x, heads) -> Dict[str, Dict[str, object]]:
  """name -> {'fwd': call, 'grad': call} for one stage's activation ``x``."""
  out = {}
  blocks = {'block 2D (even)': _block('none', heads, odd=False),
            'block 2D (odd)': _block('none', heads, odd=True),
            'block channel shift': _block('channel', heads, odd=False)}
  blocks.update({f'block patch shift [{i}]': _block('patch', heads, odd=True, impl=i)
                 for i in IMPLS})
  for name, blk in blocks.items():
    params = blk.init(jax.random.key(0), x)
    fwd, grad = _fwd_and_grad(blk.apply, params, x)
    out[name] = {'fwd': fwd, 'grad': grad}
  window = model_table.model_config('tps', 'tiny').window_size[1:]
  pat = model_table.PATTERN_C
  for impl in IMPLS:
    def op(_, y, impl=impl):
      y = patch_shift_impl(y, pat, window, impl=impl)
      return patch_shift_impl(y, pat, window, inverse=True, impl=impl)
    fwd, grad = _fwd_and_grad(op, None, x)
    out[f'patch shift + inverse [{impl}]'] = {'fwd': fwd, 'grad': grad}
  fwd, grad = _fwd_and_grad(lambda _, y: shifts.channel_shift(y, heads), None, x)
  out['channel shift'] = {'fwd': fwd, 'grad': grad}
  return out


def run(frames, size, batch, repeats, stages):
  m = model_table.model_config('tps', 'tiny')
  t, h, w = profiling._tokens(m, frames, size)  # pylint: disable=protected-access
  rows = []
  for s in stages:
    shape = (batch, t, h // 2 ** s, w // 2 ** s, m.embed_dim * 2 ** s)
    x = jax.random.normal(jax.random.key(1), shape)
    calls = stage_calls(x, m.num_heads[s])
    for mode in ('fwd', 'grad'):
      times = profiling.time_calls({k: v[mode] for k, v in calls.items()}, repeats=repeats)
      rows.append((s, shape, mode, times))
      print(s, shape, mode, {k: round(statistics.median(v) * 1e3, 2)
                             for k, v in times.items()}, flush=True)
  return rows


def _paired(a, b) -> float:
  """Median over rounds of ``a[r] / b[r]`` (both ran in the same round)."""
  return statistics.median(x / y for x, y in zip(a, b))


def _ratio(times, a, b) -> float:
  return _paired(times[a], times[b])


def _model_share(rows, mode, op_key, blk_key, ref_key):
  """Depth-weighted share and overhead over the stages of TPS-T."""
  depths = model_table.SIZES['tiny']['depths']
  med = lambda ts, k: statistics.median(ts[k])
  sel = [(depths[s], ts) for s, _, m, ts in rows if m == mode]
  op = sum(d * med(ts, op_key) for d, ts in sel)
  blk = sum(d * med(ts, blk_key) for d, ts in sel)
  ref = sum(d * med(ts, ref_key) for d, ts in sel)
  over = sum(d * med(ts, ref_key) * (_ratio(ts, blk_key, ref_key) - 1) for d, ts in sel) / ref
  return op / blk, over


def to_markdown(rows, frames, size, batch, repeats) -> str:
  """The per-stage table and a depth-weighted summary per implementation."""
  variants = [('channel', 'channel shift', 'block channel shift', 'block 2D (even)')]
  variants += [(f'patch [{i}]', f'patch shift + inverse [{i}]', f'block patch shift [{i}]',
                'block 2D (odd)') for i in IMPLS]
  lines = [
      '# Cost of the shift operators (TPS-T)',
      '',
      f'Clip {batch}x{frames}x{size}x{size}; per stage the activation `x` of that stage; median '
      f'of {repeats} interleaved runs; `fwd+bwd` is the gradient w.r.t. the block\'s parameters '
      'and input. **op** = the operator alone (patch shift: shift + inverse, as a block applies '
      'them), in ms and as a share of the block that carries it; **overhead** = that block / the '
      'same block without the op - 1, median of per-round ratios (patch-shift blocks are odd '
      'blocks, with Swin\'s cyclic window shift). The op share is the steadier number: '
      'overheads also hold timing noise of a shared machine and fusion changes around the op.',
      '',
      f'Machine: {profiling.machine()}.',
      '',
      '`gather` and `roll`: `tps_jax/shifts.py` (the gather\'s VJP is the inverse gather, a '
      'permutation\'s transpose); `gather-autodiff`: the same gather with the scatter-add VJP '
      'JAX derives, for comparison.',
      '',
      '| stage | x | pass | 2D block ms | ' + ' | '.join(
          f'{v[0]} op | {v[0]} overhead' for v in variants) + ' |',
      '| ' + ' | '.join(['---'] * (4 + 2 * len(variants))) + ' |',
  ]
  for s, shape, mode, times in rows:
    med = {k: statistics.median(v) for k, v in times.items()}
    cells = [str(s), 'x'.join(map(str, shape)), 'fwd' if mode == 'fwd' else 'fwd+bwd',
             f"{med['block 2D (odd)'] * 1e3:.1f}"]
    for _, op_key, blk_key, ref_key in variants:
      op, blk = med[op_key], med[blk_key]
      cells += [f'{op * 1e3:.2f} ({op / blk:.1%})',
                f'{_ratio(times, blk_key, ref_key) - 1:+.1%}']
    lines.append('| ' + ' | '.join(cells) + ' |')
  if not rows:
    return '\n'.join(lines) + '\n'
  lines += ['', 'Whole TPS-T backbone (stages weighted by depth):', '',
            '| op | pass | op share | overhead |', '| --- | --- | --- | --- |']
  for name, op_key, blk_key, ref_key in variants:
    for mode in ('fwd', 'grad'):
      share, over = _model_share(rows, mode, op_key, blk_key, ref_key)
      lines.append(f"| {name} | {'fwd' if mode == 'fwd' else 'fwd+bwd'} | {share:.1%} | "
                   f'{over:+.1%} |')
  return '\n'.join(lines) + '\n'


@contextlib.contextmanager
def _forced_impl(impl):
  """Every patch shift traced inside runs ``impl`` (how a whole TPS-T gets each one)."""
  shifts.patch_shift = lambda x, p, w, *, inverse=False, **_: patch_shift_impl(
      x, p, w, inverse=inverse, impl=impl)
  try:
    yield
  finally:
    shifts.patch_shift = _patch_shift


# (name, arch, patch-shift impl, bias or None = the arch's default). The relative-bias TPS
# separates the cost of the released model's per-frame bias tables from that of the shift.
MODEL_VARIANTS = [(f'TPS-T [{i}]', 'tps', i, None) for i in IMPLS] + [
    ("TPS-T [gather, bias='relative']", 'tps', 'gather', 'relative'),
    ('TSM-Swin-T', 'tsm', 'gather', None),
    ('Swin-2D-T', 'swin2d', 'gather', None)]


def model_times(frames, size, batch, repeats):
  """name -> {'forward'|'train': [s...]}: whole models of :data:`MODEL_VARIANTS`."""
  calls = {}
  for name, arch, impl, bias in MODEL_VARIANTS:
    config = base.get_config('ssv2', arch, 'tiny')
    config.model.bias = bias or config.model.bias
    with _forced_impl(impl):
      calls[name] = profiling.Profiler(config, batch=batch, frames=frames, size=size,
                                       num_classes=profiling.SSV2_CLASSES).calls()
  out = {name: {} for name in calls}
  for kind in ('train', 'forward'):
    for name, ts in profiling.time_calls({n: c[kind] for n, c in calls.items()},
                                         repeats=repeats).items():
      out[name][kind] = ts
      print(name, kind, [round(t, 3) for t in ts], flush=True)
  return out


def model_markdown(times, repeats) -> str:
  ref = times['Swin-2D-T']
  lines = ['', f'Whole models, {repeats} interleaved rounds (train step = '
           '`tps_jax.steps.train_step`, AdamW; ratios: median of per-round ratios):', '',
           '| model | fwd s | fwd / Swin-2D-T | train step s | train / Swin-2D-T |',
           '| --- | ---: | ---: | ---: | ---: |']
  for name, t in times.items():
    lines.append(
        f"| {name} | {statistics.median(t['forward']):.2f} | "
        f"{_paired(t['forward'], ref['forward']):.3f} | {statistics.median(t['train']):.2f} | "
        f"{_paired(t['train'], ref['train']):.3f} |")
  return '\n'.join(lines) + '\n'


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  a = FLAGS
  if a.cache_dir:
    profiling.enable_compilation_cache(a.cache_dir)
  with _impls_installed():
    rows = run(a.frames, a.size, a.batch, a.repeats, a.stages)
  md = to_markdown(rows, a.frames, a.size, a.batch, a.repeats)
  if a.model_repeats:
    md += model_markdown(model_times(a.frames, a.size, a.batch, a.model_repeats),
                         a.model_repeats)
  os.makedirs(os.path.dirname(a.out) or '.', exist_ok=True)
  with open(a.out, 'w') as f:
    f.write(md)
  print(md)


if __name__ == '__main__':
  apps.run(main, 'benchmarks/shift_ops.py')
