"""README.md stays short and true: at most 250 lines, every shell command in it run by a
named test or CI step, the results block as the script wrote it, and every relative link
of it and of the hand-written docs pages pointing at a file (and heading) that exists."""
import os
import re
import shlex

import pytest

from tests.conftest import ROOT

README = 'README.md'
MAX_LINES = 250
# The docs pages written by hand; the other docs/*.md are written by benchmarks and scripts.
PAGES = ('docs/model.md', 'docs/training.md', 'docs/datasets.md', 'docs/input_pipeline.md',
         'docs/performance.md', 'docs/demo.md', 'docs/extending.md',
         'docs/extending_datasets.md')
# The first word of a shell command in an untagged code block (in a bash / sh block every
# line is one; python and other tagged blocks hold none).
COMMAND_WORDS = {'python', 'python3', '.venv/bin/python', 'make', 'pip', 'pip3', 'bash', 'sh',
                 'jupyter', 'git', 'gcloud', 'tensorboard', 'docker', 'curl', 'wget'}
SHELL_TAGS = {'bash', 'sh', 'shell', 'console'}

_README_COMMANDS = 'tests/readme_commands_test.py'
DEMO = f'{_README_COMMANDS}::test_make_demo_trains_and_evaluates_the_demo_config'
PAPER = f'{_README_COMMANDS}::test_paper_commands_run_on_tiny_fake_releases'
# Every command of the README (as `shlex` splits it, comments dropped, joined by one space)
# -> what runs it: `tests/<file>.py::<test>` or a CI step (a file CI executes that holds it).
RUNS = {
    'make demo': DEMO,
    'make test': '.ci/run',
    '.venv/bin/python -m tps_jax.apps.build --dataset=k400 --manual_dir=/data/k400 '
    '--data_dir=$TFDS': PAPER,
    '.venv/bin/python -m tps_jax.apps.build --dataset=ssv2 --manual_dir=/data/ssv2 '
    '--data_dir=$TFDS': PAPER,
    '.venv/bin/python main.py --config=configs/k400_tps.py --workdir=workdir/k400_tps_t '
    '--config.dataset.data_dir=$TFDS --config.init_from=swin_tiny_patch4_window7_224.pth': PAPER,
    '.venv/bin/python main.py --config=configs/ssv2_tps.py --workdir=workdir/ssv2_tps_t '
    '--config.dataset.data_dir=$TFDS --config.init_from=workdir/k400_tps_t': PAPER,
    '.venv/bin/python main.py --config=configs/ssv2_tps.py --workdir=workdir/ssv2_tps_t '
    '--config.dataset.data_dir=$TFDS --mode=evaluate': PAPER,
}


def _read(path):
  with open(os.path.join(ROOT, path), encoding='utf-8') as f:
    return f.read()


def _split(text):
  """``(prose lines, [(tag, lines)] of the fenced code blocks)`` of a Markdown text."""
  prose, blocks, current, tag = [], [], None, ''
  for line in text.splitlines():
    fence = re.match(r'\s*```(\w*)', line)
    if fence and current is None:
      current, tag = [], fence.group(1)
    elif fence:
      blocks.append((tag, current))
      current = None
    elif current is not None:
      current.append(line)
    else:
      prose.append(line)
  return prose, blocks


def _is_command(line, tag):
  words = line.split()
  while words and re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*=\S*', words[0]):
    words = words[1:]  # VAR=value prefixes (an assignment alone is a command too)
  return tag in SHELL_TAGS or not words or words[0] in COMMAND_WORDS


def commands_in(text):
  """Every shell command of the code blocks: continuation lines joined, comments dropped,
  words joined by one space; in order."""
  found = []
  for tag, lines in _split(text)[1]:
    if tag not in SHELL_TAGS and tag:  # python, text, ...: no shell in them
      continue
    logical = ''
    for line in lines:
      logical += line.rstrip()
      if logical.endswith('\\'):
        logical = logical[:-1] + ' '
        continue
      line, logical = logical.strip(), ''
      if line and not line.startswith('#') and _is_command(line, tag):
        found.append(' '.join(shlex.split(line, comments=True)))
  return found


def commands():
  return commands_in(_read(README))


def commands_run_by(where):
  """The README's commands that ``RUNS`` says ``where`` runs, in README order."""
  return [c for c in commands() if RUNS.get(c) == where]


def test_readme_has_at_most_250_lines():
  n = len(_read(README).splitlines())
  assert n <= MAX_LINES, f'README.md has {n} lines; move detail into docs/ (at most {MAX_LINES})'


def test_commands_are_found_across_continuations_and_comments():
  text = ('```bash\npython a.py \\\n    --x=1   # why\n# a comment\ntool --y\n```\n'
          '```\nmake b\nnot one\nX=1 make c\n```\n```python\nimport x\n```\nmake prose')
  assert commands_in(text) == ['python a.py --x=1', 'tool --y', 'make b', 'X=1 make c']


def test_every_readme_command_is_mapped_to_what_runs_it():
  found = commands()
  assert len(found) == len(set(found)), 'a command appears twice in README.md'
  unmapped = [c for c in found if c not in RUNS]
  assert not unmapped, ('README commands that no test or CI step is named as running (add '
                        f'the test to RUNS, or move the command to a docs page): {unmapped}')
  stale = sorted(set(RUNS) - set(found))
  assert not stale, f'RUNS names commands README.md no longer has: {stale}'


@pytest.mark.parametrize('where', sorted(set(RUNS.values())))
def test_what_runs_a_readme_command_exists(where):
  path, _, name = where.partition('::')
  text = _read(path)
  if name:
    assert re.search(rf'^def {re.escape(name)}\(', text, re.M), f'{path} has no {name}'
  else:  # a CI step: the file CI executes holds each command mapped to it
    for command in [c for c, w in RUNS.items() if w == where]:
      assert re.search(rf'^\s*{re.escape(command)}\s*$', text, re.M), (where, command)


@pytest.mark.parametrize('name', ['synthetic_results', 'demo_results'])
def test_results_blocks_are_what_the_results_script_wrote(name):
  readme = _read(README)
  begin, end = (f'<!-- BEGIN {name} (scripts/synthetic_results.py) -->',
                f'<!-- END {name} -->')
  assert readme.count(begin) == 1 and readme.count(end) == 1
  block = readme.split(begin, 1)[1].split(end, 1)[0]
  assert block == '\n' + _read(f'docs/{name}.md')


def _slug(heading):
  """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
  return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def _anchors(path):
  return {_slug(m.group(1)) for line in _split(_read(path))[0]
          for m in [re.match(r'#+\s+(.*)', line)] if m}


def test_slug_follows_github():
  assert _slug("The paper's data sets") == 'the-papers-data-sets'
  assert _slug('Object storage (gs://)') == 'object-storage-gs'
  assert _slug('Weights: official checkpoints') == 'weights-official-checkpoints'


@pytest.mark.parametrize('page', (README,) + PAGES)
def test_relative_links_point_at_existing_files_and_headings(page):
  text = '\n'.join(_split(_read(page))[0])
  broken = []
  for target in re.findall(r'\]\(([^)\s]+)\)', text):
    if re.match(r'[a-z]+:', target):  # https:, mailto:
      continue
    path, _, anchor = target.partition('#')
    resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
    if not os.path.exists(os.path.join(ROOT, resolved)):
      broken.append(target)
    elif anchor and resolved.endswith('.md') and anchor not in _anchors(resolved):
      broken.append(target)
  assert not broken, f'{page}: links to nothing: {broken}'
