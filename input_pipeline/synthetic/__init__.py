"""The embedded synthetic data set (`reversal_pairs`); importing registers the builder."""
from input_pipeline.synthetic.render import CLASS_NAMES, FLIP_PAIRS
from input_pipeline.synthetic.reversal_pairs import ReversalPairs
