"""Top-1 / top-5 / mean class accuracy, padding masks and the confusion CSV."""
import csv
import json

import numpy as np
import pytest

from tps_jax import evaluation


def _onehot_probs(preds, k):
  p = np.full((len(preds), k), 0.01)
  p[np.arange(len(preds)), preds] = 0.9
  return p


def test_top1_top5_and_mean_class_accuracy():
  acc = evaluation.Accumulator(num_classes=6)
  labels = np.array([0, 0, 0, 1])
  preds = np.array([0, 0, 1, 1])      # class 0: 2/3, class 1: 1/1
  acc.update(_onehot_probs(preds, 6), labels, np.ones(4, bool))
  r = acc.result()
  assert r['top1'] == 0.75 and r['count'] == 4
  assert r['mean_class_accuracy'] == pytest.approx((2 / 3 + 1) / 2)
  assert r['top5'] == 1.0
  np.testing.assert_array_equal(acc.confusion[0, :2], [2, 1])


def test_top5_counts_the_label_among_the_five_best():
  acc = evaluation.Accumulator(num_classes=7)
  probs = np.array([[.3, .2, .15, .1, .09, .08, .08]])
  acc.update(probs, np.array([4]), np.ones(1, bool))
  acc.update(probs, np.array([6]), np.ones(1, bool))
  assert acc.result()['top5'] == 0.5 and acc.result()['top1'] == 0.0


def test_padding_is_ignored():
  acc = evaluation.Accumulator(num_classes=3)
  acc.update(_onehot_probs([0, 2], 3), np.array([0, 0]), np.array([True, False]))
  assert acc.result()['top1'] == 1.0 and acc.count == 1


def test_label_out_of_range_is_an_error():
  acc = evaluation.Accumulator(num_classes=3)
  with pytest.raises(ValueError, match='outside'):
    acc.update(_onehot_probs([0], 3), np.array([3]), np.ones(1, bool))


def test_report_writes_json_confusion_and_predictions(tmp_path):
  acc = evaluation.Accumulator(num_classes=2, keep_predictions=True)
  acc.update(_onehot_probs([0, 1, 1], 2), np.array([0, 1, 0]), np.ones(3, bool),
             logits=np.zeros((3, 2)))
  report = evaluation.write_report(str(tmp_path), 'validation', acc, ['a', 'b'], step=7)
  assert json.load(open(tmp_path / 'eval_validation.json'))['per_class_accuracy'] == {
      'a': 0.5, 'b': 1.0}
  assert report['step'] == 7
  rows = list(csv.reader(open(tmp_path / 'confusion_validation.csv')))
  assert rows[0] == ['true \\ predicted', 'count', 'accuracy', 'a', 'b']
  assert rows[1] == ['a', '2', '0.5000', '1', '1']
  preds = np.load(tmp_path / 'predictions_validation.npz')
  assert preds['logits'].shape == (3, 2) and list(preds['labels']) == [0, 1, 0]


def test_predictions_keep_the_video_ids_of_unmasked_examples(tmp_path):
  acc = evaluation.Accumulator(num_classes=2, keep_predictions=True)
  acc.update(_onehot_probs([0, 1, 1], 2), np.array([0, 1, 0]), np.array([True, True, False]),
             ids=np.array([b'v/1.webm', 'v/\u00e9t\u00e9.mp4'.encode(), b''], object))
  evaluation.write_report(str(tmp_path), 'validation', acc, ['a', 'b'], step=1)
  preds = np.load(tmp_path / 'predictions_validation.npz')
  assert preds['ids'].tolist() == ['v/1.webm', 'v/\u00e9t\u00e9.mp4']
  assert preds['probs'].shape == (2, 2)


def test_ids_cross_processes_as_fixed_width_bytes():
  ids = np.array([b'12345', 'caf\u00e9'.encode(), b''], object)
  encoded = evaluation.encode_ids(ids)
  assert encoded.shape == (3, 256) and encoded.dtype == np.uint8
  assert evaluation.decode_ids(encoded).tolist() == ids.tolist()
  with pytest.raises(ValueError, match='video id longer than 256 bytes'):
    evaluation.encode_ids([b'x' * 257])


def test_classes_without_examples_are_absent_not_zero(tmp_path):
  acc = evaluation.Accumulator(num_classes=3)
  acc.update(_onehot_probs([0, 1], 3), np.array([0, 0]), np.ones(2, bool))
  report = evaluation.write_report(str(tmp_path), 'validation', acc, ['a', 'b', 'c'], step=1)
  written = json.load(open(tmp_path / 'eval_validation.json'))
  assert written['per_class_accuracy'] == {'a': 0.5, 'b': None, 'c': None}
  assert written['absent_classes'] == report['absent_classes'] == ['b', 'c']
  assert written['mean_class_accuracy'] == 0.5
  rows = list(csv.reader(open(tmp_path / 'confusion_validation.csv')))
  assert [r[2] for r in rows[1:]] == ['0.5000', '', '']


def test_reversal_pair_scores_split_pair_from_direction():
  confusion = np.array([[6, 2, 2, 0],    # class 0: 8 in its pair (0, 1), 6 of them right
                        [4, 4, 0, 0],    # class 1: 8 in pair, 4 right
                        [0, 0, 5, 5],    # a frame-order-blind guess inside pair (2, 3)
                        [0, 0, 5, 5]])
  scores = evaluation.reversal_pair_scores(confusion)
  assert scores['pair'] == pytest.approx(36 / 38)
  assert scores['direction'] == pytest.approx(20 / 36)


def test_prediction_margin_is_students_t_for_one_more_draw():
  values = [0.80, 0.84, 0.88, 0.82, 0.86]   # std 0.0316, n 5, t(0.99, 4) = 3.747
  assert evaluation.prediction_margin(values, 0.99) == pytest.approx(
      3.7469 * np.std(values, ddof=1) * np.sqrt(1.2), rel=1e-4)
