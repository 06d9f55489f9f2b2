"""Fixed effects absorbed by demeaning: high-dimensional categorical factors (firm,
year, firm × year) taken out of y and X without dummy columns.

* :mod:`.factors`: labels to integer codes (per chunk, consistently across passes);
* :mod:`.projection`: the exact projection from one pass of sums (one factor, or one
  large factor with small others), then a pass subtracting the effects;
* :mod:`.alternating`: alternating projections to a tolerance (several large factors);
* :mod:`.sparse`: the cross-tabulations kept sparse and the same system solved by
  conjugate gradients (two large factors, streamed);
* :mod:`.demean`: the in-memory entry point; the streamed fit is
  :mod:`torchlinreg.models._absorb_stream`.

The demeaned rows are then folded into the ordinary least-squares state without an
intercept (the factors absorb it).
"""
