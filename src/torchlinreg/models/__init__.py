"""Estimators with the scikit-learn contract."""
