"""set_tuning / wisdom, when the libnatten built against has them (else they raise
NotImplementedError, which is checked too)."""
import numpy as np
import pytest

import natten


def test_without_tuning_api():
    if natten.has_tuning():
        pytest.skip("this libnatten has the tuning API")
    for call in (lambda: natten.set_tuning("measure"), lambda: natten.save_wisdom("x"),
                 lambda: natten.load_wisdom("x"), natten.tuning_report):
        with pytest.raises(NotImplementedError, match="tuning API"):
            call()


@pytest.mark.skipif(not natten.has_tuning(), reason="libnatten built without the tuning API")
def test_measure_and_wisdom(tmp_path):
    q = np.random.default_rng(0).standard_normal((1, 2, 9, 4))
    want = natten.na1d_qk(q, q, 3)
    with pytest.raises(ValueError, match="tuning mode"):
        natten.set_tuning("fastest")
    natten.set_tuning("measure")
    try:
        got = natten.na1d_qk(q, q, 3)
        # measurement may pick another backend than the heuristic did: the same
        # function, but not the same summation order (spec 8.13)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        sig, rows = natten.tuning_report()
        assert sig and rows and rows[0][0] == natten.last_backend() and rows[0][2] == 0
        path = tmp_path / "wisdom.txt"
        natten.save_wisdom(path)
        assert path.read_text().strip()
        natten.load_wisdom(path)
        np.testing.assert_allclose(natten.na1d_qk(q, q, 3), want, rtol=1e-12, atol=1e-12)
        bad = tmp_path / "bad.txt"
        bad.write_text("not wisdom\n")
        with pytest.raises(ValueError):
            natten.load_wisdom(bad)
    finally:
        natten.set_tuning(None)
    assert natten.get_tuning() is None


@pytest.mark.skipif(not natten._C.HAVE_EXPLAIN, reason="libnatten built without natten_explain")
def test_explain():
    q = np.random.default_rng(0).standard_normal((1, 2, 9, 4))
    rec = natten.explain(natten.na1d_qk, q, q, 3)
    assert len(rec) == 1 and rec[0].op == "qk_forward"
    assert rec[0].backend == "naive" and rec[0].status == natten._C.status_string(0)
    assert "naive" in rec[0].text
    rec = natten.explain(natten.na1d_qk, q, q, 11)          # invalid: explained, not raised
    assert rec[0].backend is None and "q.shape[2]=9 but" in rec[0].text   # caller's numbering
    out = natten.na1d_qk(q, q, 3)                           # explain mode is off again
    assert np.isfinite(out).all()
