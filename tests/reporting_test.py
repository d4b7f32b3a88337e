"""Run reporting: the curves show the validation points."""
import matplotlib
import matplotlib.figure

from tps_jax import reporting


def test_curves_plot_validation_points_with_markers(tmp_path, monkeypatch):
  writer = reporting.Writer(str(tmp_path))
  for step in range(1, 5):
    writer.write_scalars(step, {'train_loss': 2.0 / step, 'train_accuracy': 0.2 * step})
    if step % 2 == 0:
      writer.write_scalars(step, {'val_top1': 0.3 * step / 2, 'val_top5': 0.9,
                                  'val_loss': 1.5 / step})
  writer.close()
  drawn = {}
  save = matplotlib.figure.Figure.savefig

  def capture(fig, *args, **kwargs):
    for ax in fig.axes:
      for line in ax.get_lines():
        drawn[line.get_label()] = (list(line.get_xdata()), line.get_marker())
    return save(fig, *args, **kwargs)

  monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', capture)
  path = reporting.plot_history(str(tmp_path))
  assert path.endswith('curves.png')
  for name in ('val_top1', 'val_top5', 'val_loss'):
    assert drawn[name] == ([2, 4], 'o'), name
  assert drawn['train_loss'][0] == [1, 2, 3, 4]


def test_history_lines_with_an_infinite_step_or_a_non_number_are_skipped(tmp_path, caplog):
  (tmp_path / reporting.HISTORY).write_text(
      '{"step": 1, "train_loss": 2.0}\n{"step": 1e400, "train_loss": 1.0}\n'
      '{"step": 2, "train_loss": "x"}\n{"step": 3, "train_loss": 0.5}\n')
  assert reporting.read_history(str(tmp_path)) == {'train_loss': [(1, 2.0), (3, 0.5)]}
  assert 'line 2 is damaged' in caplog.text and 'line 3 is damaged' in caplog.text
  assert reporting.plot_history(str(tmp_path)).endswith('curves.png')


def test_done_line_is_one_short_line_with_the_numbers_and_not_the_summary():
  summary = {'step': 6, 'finished': True, 'source': 'scratch (random weights)',
             'config': {'x': 'y' * 10000}, 'validation': [{'step': s} for s in range(500)],
             'best_validation': {'step': 4, 'val_top1': 0.5},
             'eval': {'test': {'top1': 0.25, 'top5': 1.0, 'count': 20}}}
  line = reporting.done_line(summary, 'w/metrics.json')
  assert line == ('done: step 6; best val top-1 0.5000 at step 4; test top-1 0.2500 top-5 '
                  '1.0000 (20 videos); from scratch (random weights); summary in w/metrics.json')
