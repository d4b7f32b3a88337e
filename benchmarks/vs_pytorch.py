"""tps-jax against the authors' PyTorch TPS on the same machine: forward, train step, memory.

The authors' backbone (``SwinTransformer2D_TPS`` of MartinXM/TPS,
``mmaction/models/backbones/swin_transformer2d_tps.py``) is read at run time from a local
copy; its mmcv / mmaction / timm imports get small stand-ins (:func:`load_official`), so
only torch and einops are needed. Nothing of it is stored here::

  git clone https://github.com/MartinXM/TPS /tmp/TPS
  python benchmarks/vs_pytorch.py \
      --official_src=/tmp/TPS/mmaction/models/backbones/swin_transformer2d_tps.py

Both sides are TPS-T with the released SSv2 recipe (``configs/ssv2_tps.py``: patch
(2,4,4), window (1,7,7), drop path 0.1, I3D head with dropout 0.5 on 174 classes, label
smoothing 0.1, AdamW), float32, on the same random clips. Ours: the jitted
``tps_jax.steps.train_step`` (state donated) and the jitted eval forward of
:class:`tps_jax.profiling.Profiler`; theirs: backbone + head, ``CrossEntropyLoss``,
``backward()``, ``torch.optim.AdamW.step()``, and the forward under ``torch.no_grad()``.

Each side lives in its own process (spawned), so the two never share a heap or a thread
pool; the parent runs the rounds interleaved (ours train, theirs train, ours forward,
theirs forward), one side at a time. Memory, per side: the peak RSS of its process during
its train steps (resp. forward passes; the high-water mark is reset before each call) minus
its RSS after importing its framework (weights + optimizer state + activations + workspace
+ whatever building and compiling left resident, but not the compile-time peak itself),
and the growth within one step (peak minus the RSS just before it). Writes
``<out_dir>/vs_pytorch.{md,json}``.

The authors' code is hard-wired to 16 temporal tokens (``--frames=32``) and 7x7 windows in
every stage (``--size`` / 4 / 2**(stages - 1) >= 7); a quick run shrinks the depth instead:
``--size=112 --depths=2,2,2 --num_heads=3,6,12``.
"""
import ast
import contextlib
import importlib.util
import io
import json
import logging
import multiprocessing
import os
import statistics
import sys
import time
import types
from typing import Any, Dict, List, Tuple

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tps_jax import apps  # pylint: disable=g-import-not-at-top

SIDES = ('tps-jax', 'PyTorch')
KINDS = ('train', 'forward')
OFFICIAL_TOKENS_T = 16   # WindowAttention3D's table: window_size = (16, 7, 7), hard-wired
OFFICIAL_WINDOW = 7      # PatchShift views every window as 7 x 7


def _stand_ins() -> Dict[str, types.ModuleType]:
  """The modules the authors' file imports besides torch/numpy/einops, a few lines each."""
  import torch  # pylint: disable=g-import-not-at-top

  class DropPath(torch.nn.Module):
    """timm's stochastic depth: zero a sample's residual branch with probability p."""

    def __init__(self, drop_prob=0.0):
      super().__init__()
      self.drop_prob = drop_prob

    def forward(self, x):
      if self.drop_prob == 0.0 or not self.training:
        return x
      keep = 1.0 - self.drop_prob
      mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
      return x * mask / keep

  def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    return torch.nn.init.trunc_normal_(tensor, mean, std, a, b)

  def unavailable(*args, **kwargs):
    raise NotImplementedError('the benchmark builds the model with random weights')

  class Registry:
    def register_module(self, *args, **kwargs):
      return lambda cls: cls

  def module(name, package=False, **attrs):
    m = types.ModuleType(name)
    if package:
      m.__path__ = []
    m.__dict__.update(attrs)
    return m

  return {
      'timm': module('timm', True),
      'timm.models': module('timm.models', True),
      'timm.models.layers': module('timm.models.layers', DropPath=DropPath,
                                   trunc_normal_=trunc_normal_,
                                   to_2tuple=lambda x: x if isinstance(x, tuple) else (x, x)),
      'mmcv': module('mmcv', True),
      'mmcv.runner': module('mmcv.runner', load_checkpoint=unavailable),
      'mmaction': module('mmaction', True),
      'mmaction.utils': module('mmaction.utils', get_root_logger=logging.getLogger),
      'mmaction.models': module('mmaction.models', True),
      'mmaction.models.builder': module('mmaction.models.builder', BACKBONES=Registry()),
      'mmaction.models.backbones': module('mmaction.models.backbones', True),
  }


def load_official(path: str) -> types.ModuleType:
  """The authors' ``swin_transformer2d_tps.py`` as a module, its imports stood in for."""
  if not os.path.isfile(path):
    raise SystemExit(f'--official_src={path}: no such file (the authors\' '
                     'mmaction/models/backbones/swin_transformer2d_tps.py)')
  for name, mod in _stand_ins().items():
    sys.modules.setdefault(name, mod)
  name = 'mmaction.models.backbones.swin_transformer2d_tps'
  spec = importlib.util.spec_from_file_location(name, path)
  mod = importlib.util.module_from_spec(spec)
  sys.modules[name] = mod
  spec.loader.exec_module(mod)
  if not hasattr(mod, 'SwinTransformer2D_TPS'):
    raise SystemExit(f'--official_src={path} defines no SwinTransformer2D_TPS')
  return mod


def check_shape(frames: int, size: int, depths) -> None:
  """The authors' code's hard limits, as one line each (it would fail deep in a view())."""
  if frames // 2 != OFFICIAL_TOKENS_T:
    raise SystemExit(f'--frames={frames}: the authors\' model is hard-wired to '
                     f'{OFFICIAL_TOKENS_T} temporal tokens, i.e. --frames={2 * OFFICIAL_TOKENS_T}')
  last = size // 4 // 2 ** (len(depths) - 1)
  if size % 4 or last < OFFICIAL_WINDOW:
    raise SystemExit(f'--size={size}: with {len(depths)} stages the last one is {last}x{last} '
                     f'tokens; the authors\' model needs >= {OFFICIAL_WINDOW} (7x7 windows '
                     'everywhere): use a larger --size or fewer --depths')


def ours_config(depths, num_heads, overrides):
  """``configs/ssv2_tps.py`` (TPS-T), with ``depths``/``num_heads`` and ``k=v`` overrides."""
  from configs import ssv2_tps  # pylint: disable=g-import-not-at-top
  config = ssv2_tps.get_config()
  config.model.depths = tuple(depths)
  config.model.num_heads = tuple(num_heads)
  for item in overrides:
    key, _, raw = item.partition('=')
    *path, leaf = key.split('.')
    node = config
    for name in path:
      node = node[name]
    if leaf not in node:
      raise SystemExit(f'--override={item}: the config has no field {key}')
    try:
      node[leaf] = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
      node[leaf] = raw  # a bare string
  return config


def ours_profiler(a):
  """tps-jax's train step and eval forward, compiled: a :class:`tps_jax.profiling.Profiler`."""
  from tps_jax import profiling  # pylint: disable=g-import-not-at-top
  config = ours_config(a['depths'], a['num_heads'], a['override'])
  if a['cache_dir']:
    profiling.enable_compilation_cache(a['cache_dir'])
  return profiling.Profiler(config, batch=a['batch'], frames=a['frames'], size=a['size'],
                            num_classes=a['num_classes'])


def build_ours(a):
  """``(calls, stats)``: tps-jax's jitted train step and eval forward as zero-arg calls."""
  prof = ours_profiler(a)
  return prof.calls(), prof.stats


class TorchTPS:
  """The authors' backbone + mmaction's I3D head, its loss and AdamW, as in their configs."""

  def __init__(self, a):
    import torch  # pylint: disable=g-import-not-at-top
    official = load_official(a['official_src'])
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per shift module
      self.backbone = official.SwinTransformer2D_TPS(
          patch_size=(2, 4, 4), embed_dim=96, depths=list(a['depths']),
          num_heads=list(a['num_heads']), window_size=(1, 7, 7), mlp_ratio=4.0,
          qkv_bias=True, drop_path_rate=0.1, patch_norm=True)
    self.backbone.init_weights()
    width = 96 * 2 ** (len(a['depths']) - 1)
    self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(),
                                    torch.nn.Dropout(0.5), torch.nn.Linear(width, a['num_classes']))
    torch.nn.init.normal_(self.head[-1].weight, std=0.01)
    self.model = torch.nn.Sequential(self.backbone, self.head)
    self.loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3, betas=(0.9, 0.999),
                                 weight_decay=0.02)
    g = torch.Generator().manual_seed(1)
    self.video = torch.rand((a['batch'], 3, a['frames'], a['size'], a['size']), generator=g)
    self.label = torch.randint(0, a['num_classes'], (a['batch'],), generator=g)
    self.torch = torch

  def train(self):
    self.model.train()
    self.opt.zero_grad(set_to_none=True)
    loss = self.loss(self.model(self.video), self.label)
    loss.backward()
    self.opt.step()
    return loss.item()

  def forward(self):
    self.model.eval()
    with self.torch.no_grad():
      return float(self.model(self.video).sum())


def build_theirs(a):
  import torch  # pylint: disable=g-import-not-at-top
  m = TorchTPS(a)
  n = sum(p.numel() for p in m.model.parameters())
  return {'train': m.train, 'forward': m.forward}, {
      'params': n, 'torch_version': torch.__version__, 'torch_threads': torch.get_num_threads()}


def _status_bytes(key: str) -> int:
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith(key + ':'):
        return int(line.split()[1]) * 1024
  raise KeyError(key)


def gemm_shapes(a: Dict[str, Any]) -> List[Tuple[int, int, int]]:
  """``(M, K, N)`` of the step's largest dots (stage 1 and 3 MLP, full clip) and a square."""
  tokens = a['batch'] * a['frames'] // 2 * (a['size'] // 4) ** 2
  return [(tokens, 96, 384), (tokens, 384, 96), (tokens // 16, 384, 1536), (2048, 2048, 2048)]


def gemm_rates(side: str, a: Dict[str, Any], repeats: int = 5) -> Dict[str, float]:
  """This framework's float32 matmul rate, GFLOP/s (best of ``repeats``), per shape.

  With the step's FLOPs it gives a floor no scheduling can beat: the step's dots alone at
  the best rate either framework reaches here.
  """
  rates = {}
  for m, k, n in gemm_shapes(a):
    if side == 'tps-jax':
      import jax  # pylint: disable=g-import-not-at-top
      x = jax.random.normal(jax.random.key(0), (m, k))
      w = jax.random.normal(jax.random.key(1), (k, n))
      mm = jax.jit(lambda x, w: x @ w)
      call = lambda: jax.block_until_ready(mm(x, w))  # pylint: disable=cell-var-from-loop
    else:
      import torch  # pylint: disable=g-import-not-at-top
      x, w, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
      call = lambda: torch.mm(x, w, out=out)  # pylint: disable=cell-var-from-loop
    call()
    best = float('inf')
    for _ in range(repeats):
      t0 = time.perf_counter()
      call()
      best = min(best, time.perf_counter() - t0)
    rates[f'{m}x{k}x{n}'] = 2 * m * k * n / best / 1e9
  return rates


def _worker(side: str, a: Dict[str, Any], conn) -> None:
  """One side in its own process: build, then run one call per request.

  Replies ``(seconds, peak, step_peak)`` per call: the high-water RSS during the call minus
  the RSS after the framework's import (taken before anything was built), resp. minus the
  RSS just before the call.
  """
  # The framework first (ours: jax, flax, optax and the input pipeline's TensorFlow), then
  # the baseline RSS, then the model.
  importlib.import_module('tps_jax.steps' if side == 'tps-jax' else 'torch')
  base = _status_bytes('VmRSS')
  if side == 'tps-jax':
    import jax  # pylint: disable=g-import-not-at-top
  calls, stats = build_ours(a) if side == 'tps-jax' else build_theirs(a)
  stats['gemm_gflops_per_s'] = gemm_rates(side, a)
  conn.send(stats)
  while True:
    request = conn.recv()
    if request is None:
      return
    kind, steps = request
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')  # reset VmHWM to the current RSS
    before = _status_bytes('VmRSS')
    secs = []
    for _ in range(steps):
      t0 = time.perf_counter()
      out = calls[kind]()
      if side == 'tps-jax':
        jax.block_until_ready(out)
      secs.append(time.perf_counter() - t0)
    hwm = _status_bytes('VmHWM')
    conn.send((secs, hwm - base, hwm - before))


@contextlib.contextmanager
def malloc_env(huge_pages: bool):
  """A child spawned inside runs with (or without) :mod:`tps_jax.host`'s huge-page tunable.

  Ours runs as ``main.py`` does; the authors' code by default as its users run it (glibc's
  defaults), with ``--pytorch_malloc=hugepages`` as ours.
  """
  from tps_jax import host  # pylint: disable=g-import-not-at-top
  saved = os.environ.get('GLIBC_TUNABLES')
  kept = [t for t in (saved or '').split(':') if t and not t.startswith(host.TUNABLE + '=')]
  if huge_pages:
    kept.append(f'{host.TUNABLE}=1')
  os.environ['GLIBC_TUNABLES'] = ':'.join(kept)
  try:
    yield
  finally:
    if saved is None:
      os.environ.pop('GLIBC_TUNABLES', None)
    else:
      os.environ['GLIBC_TUNABLES'] = saved


def run(a: Dict[str, Any]) -> Dict[str, Any]:
  """Starts both sides, runs ``warmup`` + ``repeats`` interleaved rounds; returns everything."""
  ctx = multiprocessing.get_context('spawn')
  workers, tunables = {}, {}
  for side in SIDES:
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_worker, args=(side, a, child), daemon=True)
    with malloc_env(side == 'tps-jax' or a['pytorch_malloc'] == 'hugepages'):
      tunables[side] = os.environ.get('GLIBC_TUNABLES', '')
      proc.start()
    workers[side] = (proc, parent)
  t0 = time.perf_counter()
  stats = {side: conn.recv() for side, (_, conn) in workers.items()}
  print(f'built both sides in {time.perf_counter() - t0:.0f} s', flush=True)
  times = {s: {k: [] for k in KINDS} for s in SIDES}
  all_steps = {s: {k: [] for k in KINDS} for s in SIDES}
  peaks = {s: {k: 0 for k in KINDS} for s in SIDES}
  step_peaks = {s: {k: 0 for k in KINDS} for s in SIDES}
  load = [os.getloadavg()[0]]
  for r in range(a['warmup'] + a['repeats']):
    for kind in KINDS:
      for side in SIDES:
        conn = workers[side][1]
        conn.send((kind, a['steps_per_round']))
        secs, peak, step_peak = conn.recv()
        sec = statistics.mean(secs[1:] or secs)  # the first step after the other side's turn
        peaks[side][kind] = max(peaks[side][kind], peak)
        if r >= a['warmup']:  # PyTorch creates AdamW's state in its first step
          step_peaks[side][kind] = max(step_peaks[side][kind], step_peak)
        if r >= a['warmup']:
          times[side][kind].append(sec)
          all_steps[side][kind].append(secs)
        print(f'round {r - a["warmup"] + 1 if r >= a["warmup"] else "warmup"}: {side} {kind} '
              f'{", ".join(f"{x:.2f}" for x in secs)} s, peak RSS +{peak / 2**30:.2f} GiB',
              flush=True)
  load.append(os.getloadavg()[0])
  for proc, conn in workers.values():
    conn.send(None)
    proc.join(60)
  return {'args': {k: v for k, v in a.items() if k != 'official_src'}, 'stats': stats,
          'glibc_tunables': tunables, 'xla_flags': os.environ.get('XLA_FLAGS', ''),
          'times_s': times, 'step_times_s': all_steps, 'peak_rss_bytes': peaks,
          'step_rss_bytes': step_peaks, 'load_avg': load}


def _ratios(theirs: List[float], ours: List[float]) -> List[float]:
  return [t / o for t, o in zip(theirs, ours)]


def summary(res: Dict[str, Any]) -> Dict[str, Any]:
  """Medians, per-round ratios (PyTorch / ours, > 1: ours faster) and the memory ratio."""
  out = {}
  for kind in KINDS:
    ours, theirs = res['times_s']['tps-jax'][kind], res['times_s']['PyTorch'][kind]
    r = _ratios(theirs, ours)
    out[kind] = {'ours_median_s': statistics.median(ours),
                 'theirs_median_s': statistics.median(theirs),
                 'ratio_median': statistics.median(r), 'ratio_min': min(r), 'ratio_max': max(r)}
  ours_stats = res['stats']['tps-jax']
  rates = [r for side in SIDES for r in res['stats'][side].get('gemm_gflops_per_s', {}).values()]
  if rates and ours_stats.get('train_gflops'):
    best = max(rates)
    for kind in KINDS:  # the same model: XLA's FLOP count stands for both sides
      gflops = ours_stats[f'{kind}_gflops'] * res['args']['batch']
      out[kind].update(gflops=gflops, dot_floor_s=gflops / best, best_gemm_gflops_per_s=best,
                       target_s=out[kind]['theirs_median_s'] / 1.5)
  for key in ('peak_rss_bytes', 'step_rss_bytes'):  # ours / theirs (< 1: ours smaller)
    p = res[key]
    out[key.replace('_bytes', '_ratio')] = (p['tps-jax']['train'] / p['PyTorch']['train']
                                            if p['PyTorch']['train'] else None)
  return out


def markdown(res: Dict[str, Any]) -> str:
  a, s = res['args'], summary(res)
  t, p = res['times_s'], res['peak_rss_bytes']
  ours_stats, theirs_stats = res['stats']['tps-jax'], res['stats']['PyTorch']
  fmt = lambda xs: ', '.join(f'{x:.2f}' for x in xs)
  gib = lambda b: f'{b / 2**30:.2f} GiB'
  model = ('TPS-T' if tuple(a['depths']) == (2, 2, 6, 2) else
           f'TPS depths {tuple(a["depths"])}, heads {tuple(a["num_heads"])}')
  lines = [
      '# tps-jax against the authors\' PyTorch TPS',
      '',
      f'{model}, {a["frames"]}x{a["size"]}x{a["size"]} clips, batch {a["batch"]}, '
      f'{a["num_classes"]} classes, {ours_stats["dtype"]}'
      + (f' (ours with {", ".join(a["override"])})' if a['override'] else '') + '. '
      f'Per step of the whole batch, {a["repeats"]} rounds interleaved after {a["warmup"]} '
      'warm-up round(s), each side in its own process (`benchmarks/vs_pytorch.py`); in a '
      f'round each side runs {a.get("steps_per_round", 1)} consecutive step(s), as in '
      'training, and its time is their mean without the first (which follows the other '
      'side\'s turn). Ratio = PyTorch time / tps-jax time, per round (> 1: tps-jax '
      'faster); the median and the range over rounds. Memory: the high-water RSS of the '
      'side\'s process during its steps (reset before each round) minus its RSS after '
      'importing its framework (weights, optimizer state, activations, workspace, and what '
      'building/compiling left resident), and minus its RSS just before the round (what '
      'the steps themselves add).',
      '',
      f'Machine: {ours_stats["machine"]}; torch {theirs_stats["torch_version"]} with '
      f'{theirs_stats["torch_threads"]} threads; 1-minute load average '
      f'{res["load_avg"][0]:.1f} before the rounds, {res["load_avg"][1]:.1f} after.',
      'Host settings (`tps_jax/host.py`, what every tps-jax entry point sets): ' + '; '.join(
          f'{side} with `GLIBC_TUNABLES={t}`' if t else f'{side} with glibc\'s defaults'
          for side, t in res.get('glibc_tunables', {}).items())
      + f'; tps-jax with `XLA_FLAGS={res.get("xla_flags", "")}`.',
      f'Parameters: tps-jax {ours_stats["params"] / 1e6:.2f} M, PyTorch '
      f'{theirs_stats["params"] / 1e6:.2f} M.',
      '',
      '| per step | authors\' PyTorch (s) | tps-jax (s) | ratio PyTorch / tps-jax |',
      '| --- | --- | --- | --- |',
  ]
  for kind, label in (('forward', 'forward (eval)'), ('train', 'train step (fwd + bwd + AdamW)')):
    k = s[kind]
    lines.append(f'| {label} | {fmt(t["PyTorch"][kind])} (median {k["theirs_median_s"]:.2f}) '
                 f'| {fmt(t["tps-jax"][kind])} (median {k["ours_median_s"]:.2f}) '
                 f'| **{k["ratio_median"]:.2f}x** ({k["ratio_min"]:.2f}-{k["ratio_max"]:.2f}) |')
  if 'dot_floor_s' in s['train']:
    rates = {side: res['stats'][side]['gemm_gflops_per_s'] for side in SIDES}
    lines += [
        '',
        'What the CPU allows: each side\'s float32 matmul rate on the step\'s largest dot '
        'shapes (GFLOP/s, best of 5), and the floor it sets: the step\'s FLOPs (XLA\'s cost '
        'analysis; the two models are the same) at the best rate either side reaches, as if '
        'everything else (LayerNorm, softmax, GELU, layout copies, AdamW) were free.',
        '',
        '| M x K x N | ' + ' | '.join(SIDES) + ' |',
        '| --- | ' + ' | '.join('---:' for _ in SIDES) + ' |',
    ]
    for shape in rates[SIDES[0]]:
      lines.append(f'| {shape} | ' + ' | '.join(f'{rates[side][shape]:.0f}' for side in SIDES)
                   + ' |')
    lines += ['', '| per step | GFLOP | dots-only floor | 1.5x PyTorch would be | tps-jax |',
              '| --- | ---: | ---: | ---: | ---: |']
    for kind in KINDS:
      k = s[kind]
      lines.append(f'| {kind} | {k["gflops"]:.0f} | {k["dot_floor_s"]:.2f} s at '
                   f'{k["best_gemm_gflops_per_s"]:.0f} GFLOP/s | {k["target_s"]:.2f} s | '
                   f'{k["ours_median_s"]:.2f} s |')
  q = res['step_rss_bytes']
  def mem(d, kind):
    ours, theirs = d['tps-jax'][kind], d['PyTorch'][kind]
    ratio = f'tps-jax / PyTorch = {ours / theirs:.2f}' if theirs >= 2**20 else '-'
    return f'{gib(theirs)} | {gib(ours)} | {ratio}'
  lines += [
      '',
      '| memory (RSS) | authors\' PyTorch | tps-jax | ratio |',
      '| --- | --- | --- | --- |',
      f'| process peak during train steps, above its post-import RSS | {mem(p, "train")} |',
      f'| growth within one train step (after the warm-up) | {mem(q, "train")} |',
      f'| process peak during forward passes | {mem(p, "forward")} |',
      f'| growth within one forward pass | {mem(q, "forward")} |',
  ]
  return '\n'.join(lines) + '\n'


def define_flags(name: str) -> None:
  """The flags both benchmarks share (defined by the script that runs, never at import)."""
  flags.DEFINE_string('official_src', None,
                      "the authors' mmaction/models/backbones/swin_transformer2d_tps.py")
  flags.DEFINE_integer('frames', 32, 'frames per clip')
  flags.DEFINE_integer('size', 224, 'frame size')
  flags.DEFINE_integer('batch', 1, 'clips per step')
  flags.DEFINE_list('depths', ['2', '2', '6', '2'], 'blocks per stage, e.g. 2,2,2')
  flags.DEFINE_list('num_heads', ['3', '6', '12', '24'], 'heads per stage, e.g. 3,6,12')
  flags.DEFINE_integer('num_classes', 174, 'classes of the head')
  flags.DEFINE_multi_string('override', [],
                            'a config field of ours, e.g. model.dtype=bfloat16 (repeatable)')
  flags.DEFINE_string('out_dir', 'docs', 'where the outputs go')
  flags.DEFINE_string('name', name, 'output files <out_dir>/<name>.{md,json}')
  flags.DEFINE_enum('pytorch_malloc', 'default', ['default', 'hugepages'],
                    "the authors' side with glibc's default malloc (as its users run it) "
                    "or with ours (tps_jax/host.py's huge-page tunable)")
  flags.DEFINE_string('cache_dir', '/tmp/tps_jax_xla_cache',
                      "XLA's persistent compilation cache ('' = off)")


COMMON_FLAGS = ('official_src', 'frames', 'size', 'batch', 'depths', 'num_heads', 'num_classes',
                'override', 'out_dir', 'name', 'cache_dir', 'pytorch_malloc')


def flag_values(argv, extra=()) -> Dict[str, Any]:
  """The parsed flags (:func:`define_flags`' and ``extra``) as a plain dict for the children."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  values = {name: flags.FLAGS[name].value for name in COMMON_FLAGS + tuple(extra)}
  try:
    values['depths'] = [int(d) for d in values['depths']]
    values['num_heads'] = [int(h) for h in values['num_heads']]
  except ValueError:
    raise SystemExit(f'--depths={values["depths"]} / --num_heads={values["num_heads"]}: '
                     'comma-separated integers') from None
  return values


def main(argv):
  a = flag_values(argv, ('repeats', 'warmup', 'steps_per_round'))
  if not a['official_src']:
    raise SystemExit("--official_src is required (the authors' swin_transformer2d_tps.py)")
  if len(a['depths']) != len(a['num_heads']):
    raise SystemExit(f'--depths={a["depths"]} and --num_heads={a["num_heads"]} differ in length')
  check_shape(a['frames'], a['size'], a['depths'])
  if not os.path.isfile(a['official_src']):
    raise SystemExit(f'--official_src={a["official_src"]}: no such file (the authors\' '
                     'mmaction/models/backbones/swin_transformer2d_tps.py)')
  res = run(a)
  os.makedirs(a['out_dir'], exist_ok=True)
  with open(os.path.join(a['out_dir'], a['name'] + '.json'), 'w') as f:  # first: never lost
    json.dump(res, f, indent=1)
  res['summary'] = summary(res)
  with open(os.path.join(a['out_dir'], a['name'] + '.json'), 'w') as f:
    json.dump(res, f, indent=1)
  md = markdown(res)
  with open(os.path.join(a['out_dir'], a['name'] + '.md'), 'w') as f:
    f.write(md)
  print(md)


if __name__ == '__main__':
  define_flags('vs_pytorch')
  flags.DEFINE_integer('repeats', 3, 'timed rounds')
  flags.DEFINE_integer('warmup', 1, 'untimed rounds first')
  flags.DEFINE_integer('steps_per_round', 3,
                       'consecutive calls of one side per round, as in training; the round\'s '
                       'time is their mean without the first (which follows the other side\'s '
                       'turn: a few cold seconds on a shared VM, for both sides)')
  apps.run(main, 'benchmarks/vs_pytorch.py')
