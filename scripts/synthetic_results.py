"""Every synthetic-set result over seeds: the README's tables, the ablation, the CI guard.

    python scripts/synthetic_results.py                        # README table: 4 models x 3 seeds
    python scripts/synthetic_results.py --table=demo           # docs/demo_results.*: make demo
    python scripts/synthetic_results.py --table=ablation       # docs/ablation.{md,json,png}
    python scripts/synthetic_results.py --table=guard --seeds=5  # docs/guard.{md,json}: CI margin
    python scripts/synthetic_results.py --check                # make demo vs its stated range

The model comparison ('results') was measured with host augmentation and keeps it
(``--config.input.augment_on=host``), so its runs are comparable with each other; 'demo' is
``configs/synthetic_tps.py`` exactly as ``make demo`` runs it (augmentation on the device).

Each row of a table is a config file plus ``--config.*`` overrides; each (row, seed) is one
``main.py`` run in ``WORKDIR_ROOT/<table>/<row>/seed<k>`` with ``--config.seed=k`` (the seed
draws the initialisation, the data order and the augmentation). Runs go ``--jobs`` at a
time, each pinned to its own cores. Everything is resumable: a finished run is read, not
rerun, and an unfinished one resumes from its checkpoint, so rerunning the command after an
interruption only does what is missing. Each run records the commit it started at, and the
tables say which commits measured them.

A result is a distribution: tables give mean +- std (sample std over seeds) and every seed's
value. Training on a CPU is deterministic for a given machine and build, but a change of
float rounding anywhere (another CPU, thread count, XLA version, an "exact" rewrite of an op)
moves a from-scratch run like a change of seed does (docs/synthetic_results.md: how the
demo's single-seed headline moved 10 points under a change of rounding).
"""
import concurrent.futures
import dataclasses
import json
import os
import platform
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

flags.DEFINE_enum('table', 'results', ['results', 'demo', 'ablation', 'guard'],
                  'which table to run')
flags.DEFINE_list('rows', [], 'only these rows of the table (default: all)')
flags.DEFINE_integer('seeds', 3, 'seeds 0 .. N-1 per row')
flags.DEFINE_integer('jobs', max(1, (os.cpu_count() or 1) // 2),
                     'runs at a time, each pinned to cpu_count / jobs cores')
flags.DEFINE_string('workdir_root', os.path.join(ROOT, 'workdir', 'synthetic_results'),
                    'runs go to WORKDIR_ROOT/<table>/<row>/seed<k> (kept: reruns resume)')
flags.DEFINE_string('data_dir', None, 'TFDS data dir (default WORKDIR_ROOT/tfds)')
flags.DEFINE_string('docs', os.path.join(ROOT, 'docs'), 'writes DOCS/<table>.{md,json,png}')
flags.DEFINE_string('readme', os.path.join(ROOT, 'README.md'),
                    'results and demo tables: file whose BEGIN/END blocks get them ("" = none)')
flags.DEFINE_integer('timeout', 3600, 'seconds per run')
flags.DEFINE_bool('run', True, 'run the missing (row, seed) runs; --norun: tables from the '
                  'finished ones only (each row with its own number of seeds)')
flags.DEFINE_bool('rerender', False, 'write the table\'s docs (and README block) again from '
                  'its docs JSON, running nothing (after a change of wording)')
flags.DEFINE_bool('write', True, 'write the docs (and README) tables; --nowrite: only run')
flags.DEFINE_bool('check', False, 'run the demo (seed 0 of the demo table) afresh in '
                  'WORKDIR_ROOT/check and compare it with the range docs/demo_results.json '
                  'states; exit 1 outside it')
FLAGS = flags.FLAGS

def markers(name: str) -> Tuple[str, str]:
  """The README's BEGIN/END markers around the table written to ``docs/<name>.md``."""
  return (f'<!-- BEGIN {name} (scripts/synthetic_results.py) -->', f'<!-- END {name} -->')
# The stated range of a result: the two-sided 95% prediction interval of one more run from
# the seeds measured, mean +- t(0.975, n-1) std sqrt(1 + 1/n) (with 3 seeds, +-5 std; a
# plain mean +- 2 std is far too narrow for so few seeds: a fresh demo fell outside it).
RANGE_CONFIDENCE = 0.975


@dataclasses.dataclass(frozen=True)
class Row:
  name: str                       # directory name and --rows key
  label: str                      # what the table calls it
  config: str                     # config file (optionally ':arg')
  overrides: Tuple[str, ...] = ()  # --config.x=y flags of main.py


_GUARD = 'configs/synthetic_guard.py'
_HOST = ('--config.input.augment_on=host',)  # what the model comparison was measured with
TABLES: Dict[str, List[Row]] = {
    'results': [Row('tps', 'TPS', 'configs/synthetic_tps.py', _HOST),
                Row('swin2d', 'Swin-2D', 'configs/synthetic_swin2d.py', _HOST),
                Row('tsm', 'TSM-Swin', 'configs/synthetic_tsm.py', _HOST),
                Row('video_swin', 'Video Swin', 'configs/synthetic_video_swin.py', _HOST)],
    'demo': [Row('tps', 'TPS (`make demo`)', 'configs/synthetic_tps.py')],
    # The paper's ablation structure at the guard's budget (configs/synthetic_guard.py).
    'ablation': [Row('none', 'no shift (Swin-2D)', _GUARD + ':swin2d'),
                 Row('channel_only', 'channel shift only', _GUARD + ':channel_only'),
                 Row('patch_only', 'patch shift only', _GUARD + ':patch_only'),
                 Row('tps', 'channel + patch (TPS)', _GUARD),
                 Row('pattern_latin3', 'TPS, mosaic 3x3 offsets -1..1', _GUARD + ':tps,latin3'),
                 Row('ratio_4', 'TPS, channel shift 2/4 of channels (not 2/8)',
                     _GUARD, ('--config.model.channel_shift_div=4',))],
    'guard': [Row('tps', 'TPS', _GUARD), Row('swin2d', 'Swin-2D', _GUARD + ':swin2d')],
}
METRICS = ('val_top1', 'pair_accuracy', 'direction_accuracy')
DOCS_NAME = {'results': 'synthetic_results', 'demo': 'demo_results'}  # docs/<name>.{md,json,png}


def commit() -> str:
  """HEAD's short hash, with ``+dirty`` when tracked files differ from it."""
  head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True,
                        text=True).stdout.strip() or 'unknown'
  dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT,
                         capture_output=True, text=True).stdout.strip()
  return head + ('+dirty' if dirty else '')


def gflops_per_clip(row: Row) -> float:
  """XLA's FLOP count of one eval clip (forward pass), from ``tps_jax.profiling``."""
  from tps_jax import profiling  # pylint: disable=g-import-not-at-top
  config = load_config(row)  # the results rows have no overrides
  prof = profiling.Profiler(config, batch=1, frames=config.input.num_frames,
                            size=config.input.eval_image_size, num_classes=10,
                            train_step=False, materialize=False)
  return prof.stats['forward_gflops']


def load_config(row: Row):
  """The row's config file called with its ``:arg`` (without ``overrides``, main.py's job)."""
  import importlib  # pylint: disable=g-import-not-at-top
  path, _, arg = row.config.partition(':')
  module = importlib.import_module('configs.' + os.path.splitext(os.path.basename(path))[0])
  return module.get_config(arg) if arg else module.get_config()


def run_dir(row: Row, seed: int) -> str:
  """``WORKDIR_ROOT/<config>[-<arg>][-<overrides>]/seed<k>``: tables share equal runs."""
  path, _, arg = row.config.partition(':')
  parts = [os.path.splitext(os.path.basename(path))[0], arg.replace(',', '-')]
  parts += [o.split('.')[-1].replace('=', '') for o in row.overrides]
  return os.path.join(FLAGS.workdir_root, '-'.join(p for p in parts if p), f'seed{seed}')


def finished(workdir: str) -> Optional[dict]:
  """``metrics.json`` of a run that finished its training and final evaluation, else None."""
  try:
    with open(os.path.join(workdir, 'metrics.json')) as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return None
  return summary if summary.get('eval') and summary.get('finished', True) else None


def train(row: Row, seed: int, workdir: str, cores: Sequence[int]) -> None:
  """Runs (or resumes) main.py for one (row, seed), pinned to ``cores``."""
  os.makedirs(workdir, exist_ok=True)
  stamp = os.path.join(workdir, 'commit.txt')
  if not os.path.exists(stamp):  # the commit this run started at (a resume keeps it)
    with open(stamp, 'w') as f:
      f.write(commit() + '\n')
  data_dir = FLAGS.data_dir or os.path.join(FLAGS.workdir_root, 'tfds')
  cmd = [sys.executable, 'main.py', f'--config={row.config}', f'--workdir={workdir}',
         f'--config.dataset.data_dir={data_dir}', f'--config.seed={seed}', *row.overrides]
  pin = (lambda: os.sched_setaffinity(0, cores)) if hasattr(os, 'sched_setaffinity') else None
  with open(workdir + '.log', 'a') as log:
    result = subprocess.run(cmd, cwd=ROOT, timeout=FLAGS.timeout, stdout=log, stderr=log,
                            preexec_fn=pin)
  if result.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed (rc {result.returncode}): see {workdir}.log')


def read_run(workdir: str) -> dict:
  """One finished run's numbers."""
  from tps_jax import evaluation  # pylint: disable=g-import-not-at-top
  from tps_jax import visualize  # pylint: disable=g-import-not-at-top
  summary = finished(workdir)
  split = sorted(summary['eval'])[0]
  ev = summary['eval'][split]
  counts, _ = visualize.read_confusion(os.path.join(workdir, f'confusion_{split}.csv'))
  scores = evaluation.reversal_pair_scores(counts)
  with open(os.path.join(workdir, 'commit.txt')) as f:
    stamp = f.read().strip()
  return dict(val_top1=ev['top1'], pair_accuracy=scores['pair'],
              direction_accuracy=scores['direction'],
              train_step_seconds=summary['train_step_seconds'], params=summary['num_params'],
              steps=summary['step'], batch_size=summary['config']['batch_size'], commit=stamp)


def run_table(table: str, rows: Sequence[Row], seeds: Sequence[int]) -> Dict[str, List[dict]]:
  """Runs what is missing (``--jobs`` at a time, unless ``--norun``) and returns every row's
  per-seed numbers (the finished seeds of ``seeds``)."""
  todo = [(row, s) for row in rows for s in seeds if not finished(run_dir(row, s))]
  if not FLAGS.run:
    todo = []
  jobs = max(1, min(FLAGS.jobs, len(todo)))
  cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else [0]
  free = [cpus[i::jobs] for i in range(jobs)]  # disjoint core sets, one per running job
  lock, done, t0 = threading.Lock(), [0], time.time()

  def one(row, seed):
    with lock:
      cores = free.pop()
    try:
      train(row, seed, run_dir(row, seed), cores)
    finally:
      with lock:
        free.append(cores)
        done[0] += 1
        rate = (time.time() - t0) / done[0]
        print(f'[{done[0]}/{len(todo)}] {row.name} seed {seed} done; ETA '
              f'{rate * (len(todo) - done[0]) / 60:.0f} min', flush=True)

  if todo:
    print(f'{len(todo)} runs to do, {jobs} at a time', flush=True)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
      for f in [pool.submit(one, row, s) for row, s in todo]:
        f.result()
  return {row.name: [dict(read_run(run_dir(row, s)), seed=s) for s in seeds
                     if finished(run_dir(row, s))] for row in rows}


def stats(values: Sequence[float]) -> dict:
  v = np.asarray(values, float)
  std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
  return dict(mean=float(v.mean()), std=std, min=float(v.min()), max=float(v.max()),
              values=[float(x) for x in v])


def summarize(rows: Sequence[Row], runs: Dict[str, List[dict]], with_gflops: bool) -> List[dict]:
  out = []
  for row in rows:
    r = runs[row.name]
    entry = dict(name=row.name, label=row.label, config=row.config,
                 overrides=list(row.overrides), seeds=len(r),
                 seed_ids=[x['seed'] for x in r],
                 commits=sorted({x['commit'] for x in r}), params=r[0]['params'],
                 steps=r[0]['steps'], batch_size=r[0]['batch_size'],
                 # None where a resumed run only evaluated
                 train_step_seconds=float(np.median([x['train_step_seconds'] for x in r
                                                     if x['train_step_seconds'] is not None])))
    entry.update({m: stats([x[m] for x in r]) for m in METRICS})
    if with_gflops:
      entry['gflops_per_clip'] = gflops_per_clip(row)
    out.append(entry)
  return out


def pct(s: dict) -> str:
  """``mean +- std`` in percent, then every seed's value."""
  seeds = ', '.join(f'{100 * v:.1f}' for v in s['values'])
  if len(s['values']) < 2:
    return f'{seeds} (one seed: no spread)'
  return f'{100 * s["mean"]:.1f} ± {100 * s["std"]:.1f} ({seeds})'


def markdown(entries: Sequence[dict], with_cost: bool) -> str:
  head = '| model | seeds | val top-1 (%) | right pair (%) | direction (%) |'
  rule = '|---|---|---|---|---|'
  if with_cost:
    head += ' GFLOPs / clip | params |'
    rule += '---|---|'
  lines = [head, rule]
  for e in entries:
    ids = ','.join(str(i) for i in e['seed_ids'])
    line = (f'| {e["label"]} | {ids} | {pct(e["val_top1"])} | {pct(e["pair_accuracy"])} | '
            f'{pct(e["direction_accuracy"])} |')
    if with_cost:
      line += f' {e["gflops_per_clip"]:.3f} | {e["params"] / 1e3:.0f} K |'
    lines.append(line)
  return '\n'.join(lines)


def header(table: str, entries: Sequence[dict]) -> str:
  e0 = entries[0]
  commits = sorted({c for e in entries for c in e['commits']})
  machine = f'{platform.machine()}, {os.cpu_count()} CPU cores'
  what = {'results': 'the validation set of `reversal_pairs/small`, each config with host '
                     'augmentation (`--config.input.augment_on=host`)',
          'demo': 'the validation set of `reversal_pairs/small`, `configs/synthetic_tps.py` '
                  'as `make demo` runs it (augmentation on the device)',
          'ablation': 'the validation set of `reversal_pairs/mini` at the CI guard\'s budget '
                      '(`configs/synthetic_guard.py`)',
          'guard': 'the validation set of `reversal_pairs/mini` (`configs/synthetic_guard.py`)'}
  return (f'<!-- written by scripts/synthetic_results.py --table={table}; do not edit -->\n'
          f'Mean ± sample std over the seeds listed (then each seed\'s value) on {what[table]}: '
          f'{e0["steps"]} steps of {e0["batch_size"]} clips from scratch, measured at commit '
          f'{", ".join(commits)} on {machine}. Right pair = the predicted class is in the true '
          'time-reversal pair (all a frame-order-blind model can get right); direction = of '
          'those, the share with the right direction of time (0.5 for a frame-order-blind '
          'model). Times per step are in the JSON only: the runs shared the cores with each '
          'other (docs/efficiency.md measures speed).\n\n')


# Pairs the tables compare: is the difference beyond the seed spread?
COMPARE = {'results': (('tps', 'tsm'), ('tps', 'swin2d'), ('tps', 'video_swin')),
           'demo': (),
           'ablation': (('tps', 'channel_only'), ('tps', 'patch_only'), ('tps', 'none'),
                        ('patch_only', 'none'), ('channel_only', 'none'),
                        ('tps', 'pattern_latin3'), ('tps', 'ratio_4')),
           'guard': (('tps', 'swin2d'),)}


def comparisons(table: str, entries: Sequence[dict]) -> str:
  """Welch's t-test on val top-1 and direction for the table's pairs of rows."""
  from scipy import stats as st  # pylint: disable=g-import-not-at-top
  if not COMPARE[table]:
    return ''
  by = {e['name']: e for e in entries}
  lines = ['', '| comparison | val top-1: difference (p) | direction: difference (p) |',
           '|---|---|---|']
  for a, b in COMPARE[table]:
    if a not in by or b not in by:
      continue
    cells = []
    for metric in ('val_top1', 'direction_accuracy'):
      x, y = by[a][metric]['values'], by[b][metric]['values']
      p = st.ttest_ind(x, y, equal_var=False).pvalue if len(x) > 1 and len(y) > 1 else float('nan')
      cells.append(f'{100 * (np.mean(x) - np.mean(y)):+.1f} points (p = {p:.2g})')
    lines.append(f'| {by[a]["label"]} − {by[b]["label"]} | {cells[0]} | {cells[1]} |')
  return '\n'.join(lines) + ('\n\np: Welch\'s t-test over seeds; a large p means the '
                             'difference is within the seed spread.\n')


def guard_note(entries: Sequence[dict]) -> str:
  """The bounds tests/guard_test.py derives from this table (same formula, same function)."""
  from tps_jax import evaluation  # pylint: disable=g-import-not-at-top
  d = {e['name']: e['direction_accuracy'] for e in entries}
  low = d['tps']['mean'] - evaluation.prediction_margin(d['tps']['values'])
  high = d['swin2d']['mean'] + evaluation.prediction_margin(d['swin2d']['values'])
  return (f'\nCI guard (`tests/guard_test.py`): a fresh TPS run at seed 0 must reach direction '
          f'accuracy {100 * low:.1f}%, the one-sided 99% prediction bound of these '
          f'{len(d["tps"]["values"])} seeds (mean - t(0.99, n-1) std sqrt(1 + 1/n)); the same '
          f'bound upwards for Swin-2D is {100 * high:.1f}%, and the guard requires the first '
          'above the second.\n')


def replace_block(path: str, name: str, text: str) -> None:
  """Puts `text` between the BEGIN/END markers of table `name` in `path` (both must be there)."""
  begin, end = markers(name)
  with open(path) as f:
    doc = f.read()
  if begin not in doc or end not in doc:
    raise ValueError(f'{path}: no {begin!r} ... {end!r} block to fill')
  head, rest = doc.split(begin, 1)
  _, tail = rest.split(end, 1)
  with open(path, 'w') as f:
    f.write(f'{head}{begin}\n{text}{end}{tail}')


def plot(entries: Sequence[dict], title: str, path: str) -> None:
  """Bars of mean val top-1 and direction accuracy, error bars = std, dots = seeds."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(12, 0.5 * len(entries) + 1.8), sharey=True)
  y = np.arange(len(entries))
  for ax, metric, name in zip(axes, ('val_top1', 'direction_accuracy'),
                              ('val top-1', 'direction (within the right pair)')):
    means = [100 * e[metric]['mean'] for e in entries]
    stds = [100 * e[metric]['std'] for e in entries]
    ax.barh(y, means, xerr=stds, color='tab:blue', alpha=0.6, capsize=4)
    for i, e in enumerate(entries):
      ax.plot([100 * v for v in e[metric]['values']], [i] * e['seeds'], 'k.', ms=5)
    ax.set_xlim(0, 100)
    ax.set_xlabel(f'{name} (%)')
    ax.grid(axis='x', alpha=0.3)
  axes[1].axvline(50, color='gray', ls='--', lw=1)
  axes[0].set_yticks(y, [e['label'] for e in entries])
  axes[0].invert_yaxis()
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def check(rows: Sequence[Row]) -> int:
  """Runs seed 0 of ``rows`` afresh; 1 if one lands outside the range the docs state."""
  from tps_jax import evaluation  # pylint: disable=g-import-not-at-top
  with open(os.path.join(FLAGS.docs, DOCS_NAME['demo'] + '.json')) as f:
    stated = {e['name']: e for e in json.load(f)['rows']}
  root = FLAGS.workdir_root
  FLAGS.workdir_root = os.path.join(root, 'check')
  subprocess.run(['rm', '-rf', FLAGS.workdir_root], check=True)
  if not FLAGS.data_dir:
    FLAGS.data_dir = os.path.join(root, 'tfds')
  runs = run_table('demo', rows, [0])
  bad = 0
  for row in rows:
    got, s = runs[row.name][0]['val_top1'], stated[row.name]['val_top1']
    margin = evaluation.prediction_margin(s['values'], RANGE_CONFIDENCE)
    lo, hi = s['mean'] - margin, s['mean'] + margin
    ok = lo <= got <= hi
    bad += not ok
    print(f'{"ok" if ok else "OUTSIDE"}: {row.label} val top-1 {100 * got:.1f}% at '
          f'{commit()}; stated {100 * s["mean"]:.1f} ± {100 * s["std"]:.1f}% over '
          f'{stated[row.name]["seeds"]} seeds, range [{100 * lo:.1f}, {100 * hi:.1f}]%')
  return 1 if bad else 0


def main(argv):
  del argv
  rows = TABLES['demo' if FLAGS.check else FLAGS.table]
  if FLAGS.rows:
    unknown = set(FLAGS.rows) - {r.name for r in rows}
    if unknown:
      raise app.UsageError(f'--rows: {sorted(unknown)} not in table {FLAGS.table!r} '
                           f'({", ".join(r.name for r in rows)})')
    rows = [r for r in rows if r.name in FLAGS.rows]
  if FLAGS.check:
    sys.exit(check(rows))
  with_cost = FLAGS.table == 'results'
  name = DOCS_NAME.get(FLAGS.table, FLAGS.table)
  if FLAGS.rerender:
    with open(os.path.join(FLAGS.docs, name + '.json')) as f:
      entries = json.load(f)['rows']
  else:
    runs = run_table(FLAGS.table, rows, list(range(FLAGS.seeds)))
    missing = [row for row, r in runs.items() if not r]
    if missing or not FLAGS.write:
      if missing:
        print(f'no finished run of {", ".join(missing)}: nothing written')
      return
    entries = summarize(rows, runs, with_gflops=with_cost)
  md = header(FLAGS.table, entries) + markdown(entries, with_cost) + '\n'
  md += comparisons(FLAGS.table, entries)
  if FLAGS.table == 'guard':
    md += guard_note(entries)
  os.makedirs(FLAGS.docs, exist_ok=True)
  with open(os.path.join(FLAGS.docs, name + '.md'), 'w') as f:
    f.write(md)
  with open(os.path.join(FLAGS.docs, name + '.json'), 'w') as f:
    json.dump(dict(table=FLAGS.table, range='two-sided 95% prediction interval', rows=entries),
              f, indent=1)
  plot(entries, f'{FLAGS.table}: mean ± std over seeds (dots: each seed)',
       os.path.join(FLAGS.docs, name + '.png'))
  if FLAGS.table in ('results', 'demo') and FLAGS.readme:
    replace_block(FLAGS.readme, name, md)
  print(md)


if __name__ == '__main__':
  app.run(main)
