"""R-style formulas (``y ~ x1 + C(g)``) through `formulaic
<https://matthewwardrop.github.io/formulaic/>`_: a formula and a table become the model's
numbers, and what the formula learned from the training data (categories, reference
levels, the state of stateful transforms) is kept with the model, as JSON, to be applied
to new data.

Imported only when a formula is used; formulaic is the optional extra
``torchlinreg[formula]``. The entry points are :func:`torchlinreg.ols` and
``LinearRegression.from_formula`` (:mod:`.api`); the command line's ``fit --formula``
streams a file through :class:`.source.FormulaSource`.
"""
