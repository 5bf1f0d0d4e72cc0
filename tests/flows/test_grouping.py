"""How dispatch-pending groups orders into task runs (pure)."""

from __future__ import annotations

from flows.dispatch_pending import split, task_name


def test_split_fills_every_slot_then_caps_the_group_size() -> None:
    def sizes(n: int, concurrency: int, per_task: int) -> list[int]:
        groups = split({f"PO{i}": [i] for i in range(n)}, concurrency=concurrency,
                       orders_per_task=per_task)
        assert [o for g in groups for o, _ in g] == [f"PO{i}" for i in range(n)]  # in order
        return [len(g) for g in groups]

    assert sizes(5, 2, 2) == [2, 2, 1]
    assert sizes(3, 8, 10) == [1, 1, 1]  # few orders: a task each, all at once
    assert sizes(1000, 8, 10) == [10] * 100
    assert sizes(20, 8, 1) == [1] * 20
    assert sizes(0, 8, 10) == []


def test_task_names_list_the_orders() -> None:
    assert task_name([("PO1", [1])]) == "PO1"
    assert task_name([("PO1", [1]), ("PO2", [2, 3])]) == "PO1, PO2"
    assert task_name([(f"PO{i}", [i]) for i in range(1, 11)]) == "PO1, PO2 … PO10 (10 orders)"
