import os

# scikit-learn runs its array-API estimator check only when SciPy's array API
# support is switched on, and SciPy reads this once at import: set it before any
# test module imports scipy so that check runs instead of being skipped.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

# The test networks are tiny, so intra-op threads buy nothing, and on a machine
# whose cores are busy torch's spinning OpenMP threads are catastrophic: the
# digits Pipeline test took 70.6 s with 2 threads and 3.8 s with 1 on the 2-core
# CI machine while another process ran. Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
