"""What one config costs per clip: parameters, FLOPs, memory and step time.

FLOPs and compiled memory come from XLA itself (``Compiled.cost_analysis()`` and
``Compiled.memory_analysis()`` of the jitted forward pass and train step), so they need only
a compile, never a run, and are exact for what XLA executes. XLA counts a multiply-add as 2
FLOPs (papers using fvcore count it as 1: halve ours to compare). Step times are medians over
``repeats`` runs after ``warmup`` runs; the process's measured peak RSS during the train
steps is reported beside XLA's estimate.

The command line is ``python -m tps_jax.apps.profile`` (``tps_jax/apps/profile.py``).
"""
import functools
import math
import os
import platform
import statistics
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp

from tps_jax import host
from tps_jax import models

# Every field of a profile, in the order of the table; ``None`` where not measured.
FIELDS = (
    'arch', 'size', 'batch', 'frames', 'image_size', 'tokens', 'params',
    'forward_gflops', 'train_gflops',                      # per clip, XLA cost analysis
    'forward_memory_bytes',                                # compiled forward: args + out + temp
    'train_memory_bytes', 'train_xla_peak_bytes',          # compiled train step, see below
    'train_argument_bytes', 'train_output_bytes', 'train_alias_bytes', 'train_temp_bytes',
    'train_rss_peak_bytes',                                # measured: process peak RSS delta
    'forward_time_s', 'train_time_s',                      # median per step (whole batch)
    'forward_times_s', 'train_times_s',                    # every timed repeat
    'forward_compile_s', 'train_compile_s',
    'train_step', 'dtype', 'remat', 'shift_impl', 'bias', 'device', 'machine', 'jax_version',
)


SSV2_CLASSES = 174  # the paper's main benchmark


def machine() -> str:
  """One line naming where the numbers came from (device kind, host CPU count)."""
  dev = jax.devices()[0]
  return (f'{dev.platform}:{dev.device_kind} x{jax.device_count()}, host '
          f'{platform.machine()} with {os.cpu_count()} CPUs, jax {jax.__version__}')


def enable_compilation_cache(path: str) -> None:
  """XLA's persistent compilation cache in ``path``, for this process and its children.

  Benchmarks compile the same step in several processes (fresh ones for clean RSS numbers);
  with the cache only the first compile costs. Set through the environment as well, so
  processes spawned later read it at import.
  """
  settings = {'jax_compilation_cache_dir': path,
              'jax_persistent_cache_min_compile_time_secs': 0,
              'jax_persistent_cache_min_entry_size_bytes': 0}
  for name, value in settings.items():
    os.environ[name.upper()] = str(value)
    jax.config.update(name, value)


def compiled_stats(compiled) -> Dict[str, Any]:
  """FLOPs and memory of a ``jax.stages.Compiled``.

  Returns:
    ``flops``; ``argument/output/alias/temp`` bytes; ``memory`` = argument + output - alias
    + temp (every buffer the executable touches, donated outputs counted once: an upper bound
    of its peak); ``xla_peak`` = XLA's own live-range peak where this jax reports one.
  """
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per device
    cost = cost[0]
  mem = compiled.memory_analysis()
  out = dict(flops=float(cost['flops']),
             argument=int(mem.argument_size_in_bytes), output=int(mem.output_size_in_bytes),
             alias=int(mem.alias_size_in_bytes), temp=int(mem.temp_size_in_bytes))
  out['memory'] = out['argument'] + out['output'] - out['alias'] + out['temp']
  peak = getattr(mem, 'peak_memory_in_bytes', 0)
  out['xla_peak'] = int(peak) if peak else None
  return out


def _proc_status_kib(key: str) -> Optional[int]:
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith(key + ':'):
          return int(line.split()[1])
  except OSError:
    return None
  return None


class PeakRSS:
  """Peak resident memory growth of this process inside a ``with`` block, in bytes.

  Linux only: writing ``5`` to ``/proc/self/clear_refs`` resets the high-water mark
  (``VmHWM``), so the number belongs to the block even after earlier, larger peaks (compiles,
  other models). ``bytes`` stays ``None`` where that is unavailable.
  """

  def __enter__(self):
    self.bytes = None
    self._base = None
    try:
      with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
      self._base = _proc_status_kib('VmRSS')
    except OSError:
      pass
    return self

  def __exit__(self, *exc):
    hwm = _proc_status_kib('VmHWM')
    if self._base is not None and hwm is not None:
      self.bytes = max(hwm - self._base, 0) * 1024
    return False


def time_calls(calls: Mapping[str, Callable[[], Any]], *, repeats: int,
               warmup: int = 1) -> Dict[str, List[float]]:
  """Wall time of each call, ``repeats`` times, interleaved round-robin after ``warmup``.

  Interleaving makes slow phases of a shared machine hit every call alike, so ratios
  between calls are steadier than their absolute times.

  Args:
    calls: name -> zero-argument function (its result is blocked on).
    repeats: timed rounds.
    warmup: untimed rounds first (the first one compiles if nothing did).

  Returns:
    name -> list of ``repeats`` seconds.
  """
  for _ in range(warmup):
    for fn in calls.values():
      jax.block_until_ready(fn())
  times = {name: [] for name in calls}
  for _ in range(repeats):
    for name, fn in calls.items():
      t0 = time.perf_counter()
      jax.block_until_ready(fn())
      times[name].append(time.perf_counter() - t0)
  return times


def _median(xs: Sequence[float]) -> Optional[float]:
  return statistics.median(xs) if xs else None


def _tokens(model_cfg, frames: int, size: int):
  p = model_cfg.patch_size
  return (math.ceil(frames / p[0]), math.ceil(size / p[1]), math.ceil(size / p[2]))


def _fake_batch(batch: int, frames: int, size: int, num_classes: int, rng):
  """A random training batch in the input pipeline's format (``steps.train_step``'s)."""
  k1, k2 = jax.random.split(rng)
  return {'video': jax.random.uniform(k1, (batch, frames, size, size, 3), jnp.float32),
          'label': jax.random.randint(k2, (batch,), 0, num_classes)}


def with_clip(config, frames: int, size: int):
  """A copy of ``config`` whose input clips are ``frames x size x size``."""
  config = config.copy_and_resolve_references()
  config.unlock()
  config.input.num_frames = frames
  config.input.image_size = size
  config.lock()
  return config


class Profiler:
  """Compiled forward pass and train step of one config at one clip shape, ready to time.

  ``stats`` holds the compile-time fields; :meth:`calls` the zero-argument functions that run
  one forward pass / one train step (``tps_jax.steps.train_step``, jitted with the state
  donated as in training, threading its own state); ``executables`` the compiled
  ``'forward'`` / ``'train'`` (their optimized HLO names what a profiler trace shows).
  """

  def __init__(self, config, *, batch: int, frames: int, size: int, num_classes: int,
               train_step: bool = True, materialize: bool = True, seed: int = 0):
    from tps_jax import steps  # pylint: disable=g-import-not-at-top
    config = with_clip(config, frames, size)
    m = config.model
    models.validate(m, frames, size)
    model = models.build_model(m, num_classes)
    rng = jax.random.key(seed)
    video = jax.ShapeDtypeStruct((batch, frames, size, size, 3), jnp.float32)
    init = lambda: model.init({'params': rng}, jnp.zeros(video.shape, video.dtype))
    abstract = jax.eval_shape(init)
    self.stats = dict(
        arch=m.arch, size=m.size, batch=batch, frames=frames, image_size=size,
        tokens=_tokens(m, frames, size), params=models.count_params(abstract['params']),
        dtype=m.dtype, remat=bool(m.remat), shift_impl=m.shift_impl, bias=m.bias,
        device=jax.devices()[0].device_kind, machine=machine(), jax_version=jax.__version__,
        train_step=None)

    t0 = time.perf_counter()
    forward = jax.jit(lambda v, x: model.apply(v, x, train=False)[0]).lower(
        abstract, video).compile()
    self.stats['forward_compile_s'] = time.perf_counter() - t0
    self.executables = {'forward': forward}
    fs = compiled_stats(forward)
    self.stats['forward_gflops'] = fs['flops'] / 1e9 / batch
    self.stats['forward_memory_bytes'] = fs['memory']

    self._calls = {}
    make_batch = functools.partial(_fake_batch, batch, frames, size, num_classes)
    if materialize:
      variables = jax.jit(init)()
      clips = make_batch(jax.random.key(seed + 1))
      self._calls['forward'] = lambda: forward(variables, clips['video'])
    if not train_step:
      return

    # Compiled for this very state: its static fields (tx, lr_fn) are part of the treedef.
    state = steps.create_train_state(config, model, rng, abstract=not materialize)
    t0 = time.perf_counter()
    step = jax.jit(functools.partial(steps.train_step, config=config), donate_argnums=(0,))
    step = step.lower(state, jax.eval_shape(make_batch, rng), rng).compile()
    self.stats['train_compile_s'] = time.perf_counter() - t0
    self.executables['train'] = step
    ts = compiled_stats(step)
    self.stats.update(
        train_step='tps_jax.steps.train_step', train_gflops=ts['flops'] / 1e9 / batch,
        train_memory_bytes=ts['memory'], train_xla_peak_bytes=ts['xla_peak'],
        train_argument_bytes=ts['argument'], train_output_bytes=ts['output'],
        train_alias_bytes=ts['alias'], train_temp_bytes=ts['temp'])
    if materialize:
      self._state = state
      step_rng = jax.random.key(seed + 2)

      def run_step():
        self._state, metrics = step(self._state, clips, step_rng)
        return metrics
      self._calls['train'] = run_step
    host.release_free_memory()  # what compiling left in the heap, as the train loop does

  def calls(self) -> Dict[str, Callable[[], Any]]:
    """``'forward'`` and (when built) ``'train'`` as zero-argument functions."""
    return dict(self._calls)


def profile(config, *, batch: int = 1, frames: int = 32, size: int = 224, repeats: int = 3,
            warmup: int = 1, train_step: bool = True,
            num_classes: int = SSV2_CLASSES) -> Dict[str, Any]:
  """Profiles ``config`` on ``(batch, frames, size, size, 3)`` clips.

  Args:
    config: an experiment config (``config.model`` and what the train step reads).
    batch: clips per step.
    frames: frames per clip.
    size: height = width in pixels.
    repeats: timed steps of each kind; 0 compiles only (no times, no RSS).
    warmup: untimed steps first.
    train_step: also compile (and time) the train step.
    num_classes: classifier width (data sets report theirs only when read; the head is
      < 0.1% of the cost either way).

  Returns:
    A dict with every key of :data:`FIELDS` (``None`` where not measured). GFLOPs are per
    clip; memory in bytes per step; times in seconds per step of ``batch`` clips.
  """
  prof = Profiler(config, batch=batch, frames=frames, size=size, num_classes=num_classes,
                  train_step=train_step, materialize=repeats > 0)
  stats = dict.fromkeys(FIELDS)
  stats.update(prof.stats)
  if repeats > 0:
    calls = prof.calls()
    if 'train' in calls:  # first, so no earlier run has grown the allocator's pools
      with PeakRSS() as rss:
        tr = time_calls({'train': calls['train']}, repeats=repeats, warmup=warmup)['train']
      stats.update(train_times_s=tr, train_time_s=_median(tr), train_rss_peak_bytes=rss.bytes)
    fwd = time_calls({'forward': calls['forward']}, repeats=repeats, warmup=warmup)['forward']
    stats.update(forward_times_s=fwd, forward_time_s=_median(fwd))
  return stats


def _fmt(key: str, v) -> str:
  if v is None:
    return '-'
  if key.endswith('_bytes'):
    return f'{v / 2**30:.2f} GiB'
  if key.endswith('gflops'):
    return f'{v:.2f}'
  if key.endswith('_s') and not isinstance(v, list):
    return f'{v:.3f}'
  if key == 'params':
    return f'{v / 1e6:.2f} M'
  if isinstance(v, list):
    return ', '.join(f'{x:.3f}' for x in v)
  return str(v)


def format_row(stats: Mapping[str, Any]) -> str:
  """One line: params, GFLOPs, train memory and times."""
  keys = ('params', 'forward_gflops', 'train_gflops', 'train_memory_bytes',
          'train_rss_peak_bytes', 'forward_time_s', 'train_time_s')
  return ', '.join(f'{k}={_fmt(k, stats.get(k))}' for k in keys)


def format_table(stats: Mapping[str, Any]) -> str:
  """A two-column Markdown table of one profile (bytes in GiB, params in millions)."""
  lines = ['| field | value |', '| --- | --- |']
  lines += [f'| {k} | {_fmt(k, stats.get(k))} |' for k in FIELDS]
  return '\n'.join(lines)
