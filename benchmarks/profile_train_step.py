"""Where a train step's time goes: top ops of tps-jax's step and of the authors' PyTorch step.

The same step as ``benchmarks/vs_pytorch.py`` (TPS-T, SSv2 recipe, float32; each side in
its own spawned process), profiled over ``--steps`` steps after one warm-up step::

  python benchmarks/profile_train_step.py \
      --official_src=/tmp/TPS/mmaction/models/backbones/swin_transformer2d_tps.py

Ours: a ``jax.profiler`` trace; XLA's CPU runtime records one event per executed thunk (a
fusion, a dot, a copy ...), named as in the compiled step's optimized HLO, whose metadata
names the JAX operation and module path each came from (``transpose(jvp(...))`` marks the
backward pass). Theirs: ``torch.profiler`` self CPU time per aten op. Writes
``<out_dir>/train_step_profile.{md,json}``; thunks running in parallel on both cores are
summed, so shares are of summed op time, not of wall time.
"""
import collections
import glob
import json
import multiprocessing
import os
import re
import tempfile
import time
from typing import Any, Dict, List

from absl import flags

import vs_pytorch  # pylint: disable=g-import-not-at-top  (benchmarks/, the script's dir)
from tps_jax import apps  # pylint: disable=g-import-not-at-top  (vs_pytorch put the repo on sys.path)

# Trace events that are the runtime's bookkeeping, not work.
_SKIP = re.compile(r'^(end: |ThreadpoolListener|SlinkyThreadPool|ThunkExecutor|.*::Await)')
_INSTR = re.compile(r'^\s*(?:ROOT )?%?([\w.\-]+) = (.*?) ([\w\-]+)\((.*)$')


def hlo_index(hlo_text: str) -> Dict[str, Dict[str, str]]:
  """Instruction name -> {opcode, kind, op_name} of an optimized HLO module's text.

  ``op_name`` is the instruction's own metadata, or, for a fusion without one, that of
  the fused computation's root (what the fusion computes last).
  """
  comps, current, roots = {}, None, {}
  for line in hlo_text.splitlines():
    if line.endswith('{') and not line.startswith(' ') and ' = ' not in line:
      current = line.split()[1] if line.startswith('ENTRY') else line.split()[0]
      current = current.lstrip('%')
      continue
    m = _INSTR.match(line)
    if not m:
      continue
    name, _, opcode, rest = m.groups()
    op_name = re.search(r'op_name="([^"]*)"', rest)
    kind = re.search(r'kind=(k\w+)', rest)
    calls = re.search(r'calls=%?([\w.\-]+)', rest)
    comps[name] = {'opcode': opcode, 'kind': kind.group(1) if kind else '',
                   'op_name': op_name.group(1) if op_name else '',
                   'calls': calls.group(1) if calls else '', 'computation': current}
    if line.lstrip().startswith('ROOT'):
      roots[current] = name
  for info in comps.values():
    if not info['op_name'] and info['calls'] in roots:
      info['op_name'] = comps[roots[info['calls']]]['op_name']
  return comps


def _pass(op_name: str) -> str:
  if 'transpose(' in op_name:
    return 'backward'
  if 'jvp(' in op_name:
    return 'forward'
  return 'optimizer / loss / other'


def _short(op_name: str) -> str:
  """``jit(train_step)/transpose(jvp(SwinVideoClassifier))/layers_2/.../dot_general`` ->
  ``layers_2/.../dot_general``."""
  parts = [p for p in op_name.split('/') if not re.match(r'^(jit|jvp|transpose|vmap)\(', p)]
  return '/'.join(parts)


def _primitive(op_name: str) -> str:
  return op_name.rsplit('/', 1)[-1] if op_name else '?'


def _event_totals(trace_dir: str) -> Dict[str, float]:
  """Thunk name -> summed nanoseconds over the XLA runtime's threads of one trace."""
  import jax  # pylint: disable=g-import-not-at-top
  files = glob.glob(os.path.join(trace_dir, '**', '*.xplane.pb'), recursive=True)
  data = jax.profiler.ProfileData.from_file(files[0])
  totals = collections.Counter()
  for plane in data.planes:
    for line in plane.lines:
      if not line.name.startswith('tf_XLA'):
        continue
      for ev in line.events:
        if not _SKIP.match(ev.name):
          totals[ev.name] += ev.duration_ns
  return totals


def profile_ours(a: Dict[str, Any]) -> Dict[str, Any]:
  """Runs in its own process: per-thunk time of tps-jax's train step."""
  import jax  # pylint: disable=g-import-not-at-top
  prof = vs_pytorch.ours_profiler(a)
  step = prof.calls()['train']
  jax.block_until_ready(step())
  index = hlo_index(prof.executables['train'].as_text())
  with tempfile.TemporaryDirectory() as d:
    t0 = time.perf_counter()
    with jax.profiler.trace(d):
      for _ in range(a['steps']):
        jax.block_until_ready(step())
    wall = (time.perf_counter() - t0) / a['steps']
    totals = _event_totals(d)
  ops = []
  for name, ns in totals.items():
    info = index.get(name, {})
    op_name = info.get('op_name', '')
    ops.append({'name': name, 'type': re.sub(r'\.\d+$', '', name),
                'ms': ns / 1e6 / a['steps'],
                'hlo': info.get('opcode', '?') + (f' ({info["kind"]})' if info.get('kind') else ''),
                'pass': _pass(op_name), 'primitive': _primitive(op_name),
                'where': _short(op_name)})
  ops.sort(key=lambda o: -o['ms'])
  return {'wall_s': wall, 'ops': ops, 'stats': prof.stats,
          'by_type': _by(ops, 'type'), 'by_pass_primitive': _by(ops, 'pass', 'primitive')}


def profile_theirs(a: Dict[str, Any]) -> Dict[str, Any]:
  """Runs in its own process: self CPU time per aten op of the authors' train step."""
  import torch  # pylint: disable=g-import-not-at-top
  m = vs_pytorch.TorchTPS(a)
  m.train()
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
    t0 = time.perf_counter()
    for _ in range(a['steps']):
      m.train()
    wall = (time.perf_counter() - t0) / a['steps']
  ops = [{'name': e.key, 'ms': e.self_cpu_time_total / 1e3 / a['steps'],
          'calls': e.count / a['steps']} for e in p.key_averages()]
  ops.sort(key=lambda o: -o['ms'])
  return {'wall_s': wall, 'ops': ops, 'torch_version': torch.__version__}


def _in_child(fn, a):
  ctx = multiprocessing.get_context('spawn')
  with ctx.Pool(1) as pool:
    return pool.apply(fn, (a,))


def _by(ops: List[Dict[str, Any]], *keys) -> List[Dict[str, Any]]:
  groups = collections.defaultdict(float)
  for o in ops:
    groups[tuple(o[k] for k in keys)] += o['ms']
  return [dict(zip(keys, k), ms=v) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])]


def markdown(res: Dict[str, Any], top: int) -> str:
  a = res['args']
  lines = [
      '# Train step profile: tps-jax against the authors\' PyTorch',
      '',
      f'TPS-T (depths {tuple(a["depths"])}), {a["frames"]}x{a["size"]}x{a["size"]}, batch '
      f'{a["batch"]}, {a["num_classes"]} classes, float32'
      + (f', ours with {", ".join(a["override"])}' if a['override'] else '') +
      f'; {a["steps"]} profiled steps after one warm-up step '
      '(`benchmarks/profile_train_step.py`). Times are per step; an op\'s share is of the '
      'summed op time of its side (ops running on both cores at once both count).',
  ]
  if 'ours' in res:
    ours = res['ours']
    total = ours['total_ms']
    lines += [
        '',
        f'Machine: {ours["stats"]["machine"]}.',
        '',
        f'## tps-jax: {ours["wall_s"]:.2f} s per step (traced), {total / 1e3:.2f} s of summed '
        'thunk time',
        '',
        '### By pass and JAX primitive',
        '',
        '| pass | primitive | ms / step | share |',
        '| --- | --- | ---: | ---: |',
    ]
    for g in ours['by_pass_primitive'][:top]:
      lines.append(f'| {g["pass"]} | `{g["primitive"]}` | {g["ms"]:.0f} | '
                   f'{100 * g["ms"] / total:.1f}% |')
    lines += ['', '### By thunk type (`ynn_fusion`: dots run by YNNPACK; `copy*`: layout '
              'copies and transposes; `loop_*`/`input_*`: elementwise and reduction fusions)',
              '', '| thunk type | ms / step | share |', '| --- | ---: | ---: |']
    for g in ours['by_type'][:top]:
      lines.append(f'| {g["type"]} | {g["ms"]:.0f} | {100 * g["ms"] / total:.1f}% |')
    lines += ['', f'### Top {top} thunks', '',
              '| thunk | HLO | pass | where (JAX op of the fusion\'s root) | ms / step | share |',
              '| --- | --- | --- | --- | ---: | ---: |']
    for o in ours['ops'][:top]:
      lines.append(f'| {o["name"]} | {o["hlo"]} | {o["pass"]} | `{o["where"]}` | '
                   f'{o["ms"]:.0f} | {100 * o["ms"] / total:.1f}% |')
  if 'theirs' in res:
    theirs = res['theirs']
    total = theirs['total_ms']
    lines += ['',
              f'## Authors\' PyTorch (torch {theirs["torch_version"]}): {theirs["wall_s"]:.2f} s '
              f'per step (profiled), {total / 1e3:.2f} s of self CPU time',
              '',
              '| aten op | calls / step | self ms / step | share |',
              '| --- | ---: | ---: | ---: |']
    for o in theirs['ops'][:top]:
      lines.append(f'| `{o["name"]}` | {o["calls"]:.0f} | {o["ms"]:.0f} | '
                   f'{100 * o["ms"] / total:.1f}% |')
  return '\n'.join(lines) + '\n'


def main(argv):
  a = vs_pytorch.flag_values(argv, ('sides', 'steps', 'top', 'json_ops'))
  if 'theirs' in a['sides']:
    if not a['official_src']:
      raise SystemExit('--official_src is required to profile the authors\' model (--sides theirs)')
    vs_pytorch.check_shape(a['frames'], a['size'], a['depths'])
    if not os.path.isfile(a['official_src']):
      raise SystemExit(f'--official_src={a["official_src"]}: no such file')
  res = {'args': {k: v for k, v in a.items() if k != 'official_src'}}
  for side, fn in (('ours', profile_ours), ('theirs', profile_theirs)):
    if side in a['sides']:
      with vs_pytorch.malloc_env(side == 'ours' or a['pytorch_malloc'] == 'hugepages'):
        res[side] = _in_child(fn, a)
      res[side]['total_ms'] = sum(o['ms'] for o in res[side]['ops'])
      del res[side]['ops'][a['json_ops']:]  # the long tail: thousands of tiny thunks
      print(f'{side}: {res[side]["wall_s"]:.2f} s per step', flush=True)
  md = markdown(res, a['top'])
  os.makedirs(a['out_dir'], exist_ok=True)
  with open(os.path.join(a['out_dir'], a['name'] + '.md'), 'w') as f:
    f.write(md)
  with open(os.path.join(a['out_dir'], a['name'] + '.json'), 'w') as f:
    json.dump(res, f, indent=1)
  print(md)


if __name__ == '__main__':
  vs_pytorch.define_flags('train_step_profile')
  flags.DEFINE_multi_enum('sides', ['ours', 'theirs'], ['ours', 'theirs'], 'which sides to profile')
  flags.DEFINE_integer('steps', 2, 'profiled steps (after one warm-up)')
  flags.DEFINE_integer('top', 20, 'rows per table')
  flags.DEFINE_integer('json_ops', 100, 'ops per side kept in the JSON')
  apps.run(main, 'benchmarks/profile_train_step.py')
