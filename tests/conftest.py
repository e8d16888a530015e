import os

# Keep BLAS single-threaded so tests do not oversubscribe the 2-core machine
# (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE set by the environment are left alone).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")
