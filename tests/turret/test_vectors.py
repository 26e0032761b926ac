import numpy as np
from turret.vectors import unit_rows


def test_rows_become_unit_vectors_and_zero_rows_stay_zero():
    X = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]]))
    assert X.dtype == np.float32
    np.testing.assert_allclose(X, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]])


def test_a_single_vector_is_one_row_and_the_dtype_is_kept_when_asked():
    X = unit_rows(np.array([1.0, 1.0]), np.float64)
    assert X.shape == (1, 2) and X.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), [1.0])
