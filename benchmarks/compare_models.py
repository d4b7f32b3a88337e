"""TPS-T against Swin-2D-T, TSM-Swin-T and Video Swin-T (8,7,7), and against the token count.

One run writes ``docs/efficiency.{md,png}`` (the four models at one clip shape) and
``docs/frame_sweep.{md,png}`` (FLOPs, memory and time against temporal tokens)::

  python benchmarks/compare_models.py --frames=32 --size=224 --batch=1 --repeats=3

FLOPs and compiled memory come from XLA's cost and memory analysis (compile only: exact,
machine-independent). The measured peak RSS of each model comes from its own fresh process
(:func:`tps_jax.profiling.profile`), so no other model's allocations blur it. Times are
medians of interleaved rounds (every model once per round) in one process, so a slow phase
of a shared machine hits all models alike; ratios are medians of per-round ratios.
"""
import concurrent.futures
import json
import multiprocessing
import os
import statistics
import sys
from typing import Dict, List

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import base  # pylint: disable=g-import-not-at-top
from tps_jax import apps  # pylint: disable=g-import-not-at-top
from tps_jax import profiling  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
flags.DEFINE_integer('frames', 32, 'frames per clip')
flags.DEFINE_integer('size', 224, 'frame size')
flags.DEFINE_integer('batch', 1, 'clips per batch')
flags.DEFINE_integer('repeats', 3, 'timed rounds, side-by-side table')
flags.DEFINE_bool('skip_side_by_side', False, 'only the sweep')
flags.DEFINE_multi_integer('sweep_tokens', [4, 8, 16, 32], 'temporal tokens of the sweep '
                           '(repeat the flag; --sweep_tokens=0 alone: no sweep)')
flags.DEFINE_integer('sweep_size', 224, 'frame size of the sweep')
flags.DEFINE_integer('sweep_repeats', 2, 'timed rounds per sweep point')
flags.DEFINE_bool('resume', False, 'keep the sweep points already in <out_dir>/frame_sweep.json')
flags.DEFINE_string('out_dir', 'docs', 'where the tables, JSON and plots go')
flags.DEFINE_string('cache_dir', '/tmp/tps_jax_xla_cache',
                    "XLA's persistent compilation cache ('' = off): the timing phase and the "
                    'sweep reuse the executables compiled by the isolated profiles')

# name -> (arch, model overrides); all Swin-T widths and depths, SSv2's 174 classes.
MODELS = {
    'TPS-T': ('tps', {}),
    'Swin-2D-T': ('swin2d', {}),
    'TSM-Swin-T': ('tsm', {}),
    'Video-Swin-T (8,7,7)': ('video_swin', {'window_size': (8, 7, 7)}),
}
COLORS = {'TPS-T': 'tab:red', 'Swin-2D-T': 'tab:blue', 'TSM-Swin-T': 'tab:green',
          'Video-Swin-T (8,7,7)': 'tab:purple'}
MARKERS = {'TPS-T': 'o', 'Swin-2D-T': 's', 'TSM-Swin-T': '^', 'Video-Swin-T (8,7,7)': 'D'}
REFERENCE = 'Swin-2D-T'
VIDEO_SWIN = 'Video-Swin-T (8,7,7)'
DATASET = 'ssv2'


def model_config(name: str, tokens_t: int):
  """The experiment config of ``name``; TPS at > 16 temporal tokens uses bias='relative'."""
  arch, overrides = MODELS[name]
  config = base.get_config(DATASET, arch, 'tiny')
  for k, v in overrides.items():
    config.model[k] = v
  if config.model.bias == 'official' and tokens_t > 16:
    config.model.bias = 'relative'  # the released bias table stops at 16 temporal tokens
  return config


def _profile_in_child(name, tokens_t, kwargs):
  """Runs in a fresh process (spawned): one model's full profile, RSS included."""
  return profiling.profile(model_config(name, tokens_t), **kwargs)


def profile_isolated(names, tokens_t, **kwargs) -> Dict[str, dict]:
  """:func:`profiling.profile` of each model, each in its own fresh process."""
  ctx = multiprocessing.get_context('spawn')
  out = {}
  for name in names:
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
      out[name] = pool.submit(_profile_in_child, name, tokens_t, kwargs).result()
    print(f'{name}: {profiling.format_row(out[name])}', flush=True)
  return out


def time_interleaved(names, *, batch, frames, size, repeats, train_names=None):
  """``(stats, times)``: compile-time fields and name -> {'forward'|'train': [s...]}.

  All models are built first; then every round runs each model's step once. Only
  ``train_names`` (default: all) get a train step.
  """
  train_names = names if train_names is None else train_names
  tokens_t = -(-frames // 2)
  stats, calls = {}, {}
  for name in names:
    prof = profiling.Profiler(model_config(name, tokens_t), batch=batch, frames=frames,
                              size=size, num_classes=profiling.SSV2_CLASSES,
                              train_step=name in train_names)
    stats[name], calls[name] = prof.stats, prof.calls()
  times = {name: {} for name in names}
  for kind in ('train', 'forward'):
    timed = {n: c[kind] for n, c in calls.items() if kind in c}
    for name, ts in profiling.time_calls(timed, repeats=repeats).items():
      times[name][kind] = ts
  return stats, times


def memory_budget() -> int:
  """Bytes a train step may take here: 40% of physical memory (others share the host)."""
  return int(0.4 * os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))


def paired_ratio(a: List[float], b: List[float]) -> float:
  """Median over rounds of ``a[r] / b[r]``."""
  return statistics.median(x / y for x, y in zip(a, b))


def _gib(x):
  return '-' if x is None else f'{x / 2**30:.2f}'


def efficiency_markdown(stats, times, *, batch, frames, size, repeats, load=None) -> str:
  """The side-by-side table, ratios to Swin-2D-T and the issue's checks."""
  ref = stats[REFERENCE]
  lines = [
      f'# Efficiency: TPS-T against 2D, TSM and 3D Swin-T ({frames}x{size}x{size})',
      '',
      f'Per clip of {frames} frames at {size}x{size} (batch {batch}, float32, SSv2 head of 174 '
      'classes). GFLOPs: XLA cost analysis of the compiled forward pass and train step (a '
      'multiply-add counts 2; fvcore-style "FLOPs" in papers are half). Train memory: the '
      'compiled train step (XLA: arguments + outputs - donated + temporaries), and the '
      'measured peak RSS growth of a fresh process over its train steps. Times: median of '
      f'{repeats} interleaved rounds; ratios: median of per-round ratios.',
      '',
      f'Machine: {ref["machine"]}' + (
          f'; 1-minute load average {load[0]:.1f} before the timed rounds, {load[1]:.1f} after '
          '(other jobs share this host)' if load else '') + '.',
      '',
      '| model | params (M) | fwd GFLOPs | train GFLOPs | train mem XLA (GiB) | '
      'train peak RSS (GiB) | fwd s | train s | FLOPs / 2D | XLA mem / 2D | train time / 2D |',
      '| --- | ' + ' | '.join(['---:'] * 10) + ' |',
  ]
  for name, s in stats.items():
    t = times[name]
    lines.append(
        f'| {name} | {s["params"] / 1e6:.2f} | {s["forward_gflops"]:.1f} | '
        f'{s["train_gflops"]:.1f} | {_gib(s["train_memory_bytes"])} | '
        f'{_gib(s["train_rss_peak_bytes"])} | {statistics.median(t["forward"]):.2f} | '
        f'{statistics.median(t["train"]):.2f} | '
        f'{s["forward_gflops"] / ref["forward_gflops"]:.4f} | '
        f'{s["train_memory_bytes"] / ref["train_memory_bytes"]:.3f} | '
        f'{paired_ratio(t["train"], times[REFERENCE]["train"]):.3f} |')
  tps, vs = stats['TPS-T'], stats[VIDEO_SWIN]
  flops_ratio = tps['forward_gflops'] / ref['forward_gflops']
  train_flops_ratio = tps['train_gflops'] / ref['train_gflops']
  time_ratio = paired_ratio(times['TPS-T']['train'], times[REFERENCE]['train'])
  fwd_ratio = paired_ratio(times['TPS-T']['forward'], times[REFERENCE]['forward'])
  ok = lambda c: 'yes' if c else '**no**'
  lines += [
      '',
      '| check | value | target | met |',
      '| --- | ---: | ---: | --- |',
      f'| TPS-T / Swin-2D-T forward FLOPs | {flops_ratio:.5f} | <= 1.001 | '
      f'{ok(flops_ratio <= 1.001)} |',
      f'| TPS-T / Swin-2D-T train-step FLOPs | {train_flops_ratio:.5f} | <= 1.001 | '
      f'{ok(train_flops_ratio <= 1.001)} |',
      f'| TPS-T / Swin-2D-T train-step time | {time_ratio:.3f} | <= 1.05 | '
      f'{ok(time_ratio <= 1.05)} |',
      f'| TPS-T / Swin-2D-T forward time | {fwd_ratio:.3f} | (reported) | |',
      f'| TPS-T / Video-Swin-T forward FLOPs | '
      f'{tps["forward_gflops"] / vs["forward_gflops"]:.3f} | < 1 | '
      f'{ok(tps["forward_gflops"] < vs["forward_gflops"])} |',
      f'| TPS-T / Video-Swin-T train memory (XLA) | '
      f'{tps["train_memory_bytes"] / vs["train_memory_bytes"]:.3f} | < 1 | '
      f'{ok(tps["train_memory_bytes"] < vs["train_memory_bytes"])} |',
  ]
  if tps['train_rss_peak_bytes'] and vs['train_rss_peak_bytes']:
    r = tps['train_rss_peak_bytes'] / vs['train_rss_peak_bytes']
    lines.append(f'| TPS-T / Video-Swin-T train peak RSS | {r:.3f} | < 1 | {ok(r < 1)} |')
  return '\n'.join(lines) + '\n'


def efficiency_plot(stats, times, path, title):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  names = list(stats)
  panels = [
      ('GFLOPs per clip (forward)', [stats[n]['forward_gflops'] for n in names]),
      ('train-step memory, GiB (XLA)', [stats[n]['train_memory_bytes'] / 2**30 for n in names]),
      ('train-step peak RSS, GiB', [(stats[n]['train_rss_peak_bytes'] or 0) / 2**30
                                    for n in names]),
      ('train-step time, s', [statistics.median(times[n]['train']) for n in names]),
  ]
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
  for ax, (label, vals) in zip(axes, panels):
    ax.bar(range(len(names)), vals, color=[COLORS[n] for n in names])
    ax.set_xticks(range(len(names)), [n.replace(' (', '\n(') for n in names], fontsize=7)
    ax.set_title(label, fontsize=9)
    for i, v in enumerate(vals):
      ax.text(i, v, f'{v:.3g}', ha='center', va='bottom', fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def sweep(names, token_counts, *, size, batch, repeats, json_path,
          resume=False) -> Dict[int, Dict[str, dict]]:
  """tokens -> name -> profile fields, saved to ``json_path`` after every point; with
  ``resume``, points already there are kept (a cut-off run goes on where it stopped).

  FLOPs and memory for every point from compilation; times where ``repeats`` and the train
  step fits :func:`memory_budget` (else only the forward pass is timed).
  """
  out = {}
  if resume and os.path.exists(json_path):
    with open(json_path) as f:
      out = {int(k): v for k, v in json.load(f).items()}
  for tokens_t in token_counts:
    if tokens_t in out:
      continue
    frames = 2 * tokens_t
    stats = {n: profiling.profile(model_config(n, tokens_t), batch=batch, frames=frames,
                                  size=size, repeats=0) for n in names}
    if repeats:
      fits = [n for n in names if stats[n]['train_memory_bytes'] <= memory_budget()]
      _, times = time_interleaved(names, batch=batch, frames=frames, size=size,
                                  repeats=repeats, train_names=fits)
      for n in names:
        stats[n]['forward_time_s'] = statistics.median(times[n]['forward'])
        if 'train' in times[n]:
          stats[n]['train_time_s'] = statistics.median(times[n]['train'])
    out[tokens_t] = stats
    with open(json_path, 'w') as f:
      json.dump({str(k): v for k, v in sorted(out.items())}, f, indent=1)
    for n, st in stats.items():
      print(f'{tokens_t} tokens, {n}: {profiling.format_row(st)}', flush=True)
  return {t: out[t] for t in token_counts}


SWEEP_METRICS = (('GFLOPs per clip (forward)', 'forward_gflops', 1, '{:.1f}'),
                 ('Train-step memory, GiB (XLA)', 'train_memory_bytes', 2**30, '{:.2f}'),
                 ('Train-step time, s', 'train_time_s', 1, '{:.2f}'))


def sweep_markdown(results, *, size, batch, repeats) -> str:
  """One small table per metric: rows = token counts, columns = models + TPS ratios."""
  names = list(next(iter(results.values())))
  first = next(iter(next(iter(results.values())).values()))
  lines = [
      '# Cost against the temporal token count',
      '',
      f'Temporal tokens = frames / 2 (patch size 2), {size}x{size}, batch {batch}, Swin-T '
      'widths. GFLOPs per clip and train-step memory from XLA (compile only); train-step time '
      f'the median of {repeats} interleaved rounds ("-": not timed, the train step needs more '
      f'than {memory_budget() / 2**30:.0f} GiB, 40% of this host); on a shared CPU these few '
      'rounds show the trend, not a precise ratio (efficiency.md has the paired TPS / 2D time '
      'ratio). TPS-T uses the released model\'s bias '
      "table up to 16 tokens and bias='relative' at 32 (that table stops at 16 tokens); the "
      'FLOPs are the same either way.',
      '',
      f'Machine: {first["machine"]}.',
  ]
  for title, key, scale, fmt in SWEEP_METRICS:
    lines += ['', f'### {title}', '',
              '| tokens | frames | ' + ' | '.join(names) + f' | TPS / {REFERENCE} | '
              'TPS / Video-Swin |',
              '| ---: | ---: | ' + ' | '.join(['---:'] * (len(names) + 2)) + ' |']
    for tokens_t, by_name in results.items():
      vals = {n: by_name[n].get(key) for n in names}
      cells = [str(tokens_t), str(2 * tokens_t)]
      cells += ['-' if v is None else fmt.format(v / scale) for v in vals.values()]
      for other in (REFERENCE, VIDEO_SWIN):
        ok = vals['TPS-T'] is not None and vals[other]
        cells.append(f"{vals['TPS-T'] / vals[other]:.3f}" if ok else '-')
      lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def sweep_plot(results, path, title):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  tokens = list(results)
  names = list(results[tokens[0]])
  panels = [(title, key, scale) for title, key, scale, _ in SWEEP_METRICS]
  fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
  for ax, (label, key, scale) in zip(axes, panels):
    for n in names:
      pts = [(t, results[t][n][key]) for t in tokens if results[t][n].get(key) is not None]
      if not pts:
        continue
      ax.plot([t for t, _ in pts], [v / scale for _, v in pts], marker=MARKERS[n], color=COLORS[n],
              linestyle='--' if n == 'TPS-T' else '-', markerfacecolor='none', label=n)
    ax.set_xscale('log', base=2)
    ax.set_yscale('log', base=2)
    ax.set_xticks(tokens, [str(t) for t in tokens])
    ax.set_xlabel('temporal tokens')
    ax.set_title(label, fontsize=9)
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def side_by_side(a, names, machine):
  """The four models at one clip shape -> efficiency.{md,png,json}."""
  stats = profile_isolated(names, -(-a.frames // 2), batch=a.batch, frames=a.frames,
                           size=a.size, repeats=1, warmup=1)
  load = [os.getloadavg()[0]]
  _, times = time_interleaved(names, batch=a.batch, frames=a.frames, size=a.size,
                              repeats=a.repeats)
  load.append(os.getloadavg()[0])
  md = efficiency_markdown(stats, times, batch=a.batch, frames=a.frames, size=a.size,
                           repeats=a.repeats, load=load)
  with open(os.path.join(a.out_dir, 'efficiency.md'), 'w') as f:
    f.write(md)
  efficiency_plot(stats, times, os.path.join(a.out_dir, 'efficiency.png'),
                  f'Swin-T family, {a.frames}x{a.size}x{a.size}, batch {a.batch} ({machine})')
  with open(os.path.join(a.out_dir, 'efficiency.json'), 'w') as f:
    json.dump({'stats': stats, 'times': times}, f, indent=1)
  print(md, flush=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  a = FLAGS
  if a.cache_dir:
    profiling.enable_compilation_cache(a.cache_dir)
  os.makedirs(a.out_dir, exist_ok=True)
  names = list(MODELS)
  machine = profiling.machine()

  if not a.skip_side_by_side:
    side_by_side(a, names, machine)
  sweep_tokens = [t for t in a.sweep_tokens if t > 0]
  if sweep_tokens:
    json_path = os.path.join(a.out_dir, 'frame_sweep.json')
    results = sweep(names, sweep_tokens, size=a.sweep_size, batch=a.batch,
                    repeats=a.sweep_repeats, json_path=json_path, resume=a.resume)
    md = sweep_markdown(results, size=a.sweep_size, batch=a.batch, repeats=a.sweep_repeats)
    with open(os.path.join(a.out_dir, 'frame_sweep.md'), 'w') as f:
      f.write(md)
    sweep_plot(results, os.path.join(a.out_dir, 'frame_sweep.png'),
               f'Swin-T family vs temporal tokens, {a.sweep_size}x{a.sweep_size} ({machine})')
    print(md)


if __name__ == '__main__':
  apps.run(main, 'benchmarks/compare_models.py')
