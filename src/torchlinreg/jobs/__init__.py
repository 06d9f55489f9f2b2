"""The CLI's work on files: each job streams its input in chunks, calls the library and
returns a result for the command line to print (or a program to use).

- :mod:`.fit`: ``fit_file`` and its options (checked together, once);
- :mod:`.passes`: the passes over a file, named on the progress line and counted;
- :mod:`.summary`: the statistical summary of a fit (a robust covariance reads the file
  again);
- :mod:`.predict`: a saved model applied to new data (``predict_file``,
  ``evaluate_file``);
- :mod:`.describe`: what a model file holds, without loading torch;
- :mod:`.common`: what these share (opening a file, the coefficient table).
"""

from .describe import describe_model
from .fit import FitOptions, FitResult, fit_file
from .predict import PredictResult, evaluate_file, predict_file

__all__ = [
    "FitOptions",
    "FitResult",
    "PredictResult",
    "describe_model",
    "evaluate_file",
    "fit_file",
    "predict_file",
]
