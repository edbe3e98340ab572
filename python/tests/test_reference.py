"""The test reference itself, checked against the spec's worked examples (§1.6, §1.7, §2)."""
import pytest

from reference import Neighbourhood, axis_window

# (L, K, d, s, causal) -> neighbour sets per query, from the spec's table §1.6
CASES = [
    ((7, 3, 1, 1, False), ["012", "012", "123", "234", "345", "456", "456"]),
    ((8, 4, 1, 1, False), ["0123", "0123", "0123", "1234", "2345", "3456", "4567", "4567"]),
    ((10, 3, 2, 1, False), ["024", "135", "024", "135", "246", "357", "468", "579", "468", "579"]),
    ((7, 3, 2, 1, False), ["024", "135", "024", "135", "246", "135", "246"]),
    ((6, 3, 1, 1, True), ["0", "01", "012", "123", "234", "345"]),
    ((8, 4, 1, 1, True), ["0", "01", "012", "0123", "1234", "2345", "3456", "4567"]),
    ((7, 3, 2, 1, True), ["0", "1", "02", "13", "024", "135", "246"]),
    ((8, 4, 1, 2, False), ["0123", "0123", "1234", "1234", "3456", "3456", "4567", "4567"]),
    ((7, 3, 1, 2, False), ["012", "012", "234", "234", "456", "456", "456"]),
    ((9, 3, 1, 3, False), ["012"] * 3 + ["345"] * 3 + ["678"] * 3),
    ((7, 3, 1, 2, True), ["0", "01", "12", "123", "34", "345", "456"]),
    ((10, 3, 2, 2, False), ["024", "135", "024", "135", "468", "579", "468", "579", "468", "579"]),
]


@pytest.mark.parametrize("args,expect", CASES)
def test_worked_examples(args, expect):
    L, K, d, s, c = args
    got = ["".join(str(j) for j, _, _ in axis_window(L, K, d, s, c, i)) for i in range(L)]
    assert got == expect


def test_slot_order_2d():
    # §1.7: extent (5,6), K=(3,4), query (0,5): slot 0 <-> (0,2), 3 <-> (0,5), 4 <-> (1,2), 11 <-> (2,5)
    nb = Neighbourhood((5, 6), (3, 4), (1, 1), (1, 1), (False, False))
    q = 0 * 6 + 5
    for slot, (x, y) in {0: (0, 2), 3: (0, 5), 4: (1, 2), 11: (2, 5)}.items():
        assert nb.nbr[q, slot] == x * 6 + y


def test_rpb_index():
    # §2: L=7, K=3: query 0 -> {2,3,4}; 1-5 -> {1,2,3}; 6 -> {0,1,2}
    expect = {0: [2, 3, 4], 3: [1, 2, 3], 6: [0, 1, 2]}
    for i, e in expect.items():
        assert [x[2] for x in axis_window(7, 3, 1, 1, False, i)] == e
    # L=10, K=3, d=2: queries 0,1 -> {2,3,4}; 2-7 -> {1,2,3}; 8,9 -> {0,1,2}
    for i, e in {0: [2, 3, 4], 1: [2, 3, 4], 5: [1, 2, 3], 8: [0, 1, 2], 9: [0, 1, 2]}.items():
        assert [x[2] for x in axis_window(10, 3, 2, 1, False, i)] == e
