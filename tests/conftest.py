import os

# scikit-learn runs its array-API estimator check only when SciPy's array API
# support is switched on, and SciPy reads this once at import: set it before any
# test module imports scipy so that check runs instead of being skipped.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
