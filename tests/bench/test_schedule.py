"""The order of the timed runs."""

import itertools

import pytest

from bench.schedule import round_robin

CLIENTS = ["agent", "s5cmd", "boto3-default"]


def test_every_client_runs_once_per_round() -> None:
    order = round_robin(CLIENTS, 4)
    for round_index in range(4):
        assert sorted(c for r, c in order if r == round_index) == sorted(CLIENTS)
    assert len(order) == 12


def test_runs_alternate_between_clients_instead_of_all_runs_of_one_client_first() -> None:
    order = [client for _round, client in round_robin(CLIENTS, 3)]
    assert all(a != b for a, b in itertools.pairwise(order))


def test_each_round_starts_one_client_further_along() -> None:
    firsts = [order[0][1] for order in _rounds(round_robin(CLIENTS, 3))]
    assert firsts == ["agent", "s5cmd", "boto3-default"]


def test_rounds_are_numbered_in_order() -> None:
    assert [r for r, _c in round_robin(CLIENTS, 2)] == [0, 0, 0, 1, 1, 1]


def test_zero_runs_is_refused_naming_the_option() -> None:
    with pytest.raises(ValueError, match="--runs is 0"):
        round_robin(CLIENTS, 0)


def test_no_client_is_refused_naming_the_option() -> None:
    with pytest.raises(ValueError, match="--clients selects no client"):
        round_robin([], 3)


def _rounds(order: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    rounds: dict[int, list[tuple[int, str]]] = {}
    for item in order:
        rounds.setdefault(item[0], []).append(item)
    return [rounds[k] for k in sorted(rounds)]
