"""The balancer: round-robin, ClientIP affinity with its timeout, and the hash that makes proxies agree."""

from __future__ import annotations

import random

from control.client.testing import FakeClock
from control.proxy.balancer import Balancer

A, B, C, D = (("127.244.1.1", 80), ("127.244.1.2", 80), ("127.244.1.3", 80), ("127.244.1.4", 80))


def balancer(*backends: tuple[str, int], affinity: float | None = None, seed: int = 1) -> Balancer:
    result = Balancer(clock=FakeClock(), rng=random.Random(seed))
    result.update(tuple(backends), affinity_timeout=affinity)
    return result


def test_round_robin_visits_every_backend_in_turn():
    rr = balancer(A, B, C)
    picks = [rr.pick("127.0.0.1") for _ in range(9)]
    assert sorted(picks[:3]) == [A, B, C]
    assert picks[:3] == picks[3:6] == picks[6:]


def test_round_robin_start_is_random_per_balancer():
    starts = {balancer(A, B, C, D, seed=seed).pick("127.0.0.1") for seed in range(20)}
    assert len(starts) > 1


def test_no_backends_gives_none():
    empty = balancer()
    assert empty.pick("127.0.0.1") is None
    empty.update((), affinity_timeout=10.0)
    assert empty.pick("127.0.0.1") is None


def test_exclude_skips_failed_backends_and_gives_up_when_all_failed():
    rr = balancer(A, B, C)
    assert rr.pick("127.0.0.1", exclude=[A, B]) == C
    assert rr.pick("127.0.0.1", exclude=[A, B, C]) is None


def test_update_keeps_the_rotation_going_over_the_new_list():
    rr = balancer(A, B, C)
    rr.pick("127.0.0.1")
    rr.update((A, B), affinity_timeout=None)
    picks = {rr.pick("127.0.0.1") for _ in range(4)}
    assert picks == {A, B}
    rr.update((), affinity_timeout=None)
    assert rr.pick("127.0.0.1") is None
    rr.update((C,), affinity_timeout=None)
    assert rr.pick("127.0.0.1") == C


def test_affinity_pins_a_client_until_the_timeout():
    clock = FakeClock()
    sticky = Balancer(clock=clock)
    sticky.update((A, B, C), affinity_timeout=30.0)
    first = sticky.pick("127.0.0.7")
    for _ in range(10):
        clock.advance(29)  # each pick renews the affinity
        assert sticky.pick("127.0.0.7") == first
    # A new backend appears: the pinned client stays where it is until its affinity lapses.
    candidates = [(f"127.244.9.{i}", 80) for i in range(1, 255)]
    newcomer = next(b for b in candidates if _would_choose("127.0.0.7", (A, B, C, b)) == b)
    sticky.update((A, B, C, newcomer), affinity_timeout=30.0)
    assert sticky.pick("127.0.0.7") == first
    clock.advance(30)
    assert sticky.pick("127.0.0.7") == newcomer


def _would_choose(client: str, backends: tuple) -> tuple[str, int] | None:
    fresh = Balancer(clock=FakeClock())
    fresh.update(backends, affinity_timeout=1.0)
    return fresh.pick(client)


def test_affinity_choice_is_the_same_in_every_proxy():
    """Two proxies (different random state) place each client on the same backend."""
    clients = [f"127.0.{i}.{j}" for i in range(4) for j in range(1, 30)]
    one, two = balancer(A, B, C, D, affinity=60, seed=1), balancer(A, B, C, D, affinity=60, seed=2)
    placements = [one.pick(client) for client in clients]
    assert placements == [two.pick(client) for client in clients]
    # ...and clients spread over every backend.
    assert set(placements) == {A, B, C, D}


def test_affinity_ends_when_the_backend_leaves_or_fails():
    clock = FakeClock()
    sticky = Balancer(clock=clock)
    sticky.update((A, B, C), affinity_timeout=60.0)
    pinned = sticky.pick("127.0.0.9")
    rest = tuple(b for b in (A, B, C) if b != pinned)
    # The pinned backend fails to accept: the client moves, and stays on its new backend.
    moved = sticky.pick("127.0.0.9", exclude=[pinned])
    assert moved in rest
    assert sticky.pick("127.0.0.9") == moved
    # That backend leaves the pool: the client is placed again among those that remain.
    sticky.update(tuple(b for b in (A, B, C) if b != moved), affinity_timeout=60.0)
    assert sticky.pick("127.0.0.9") in {A, B, C} - {moved}


def test_turning_affinity_off_returns_to_round_robin():
    sticky = balancer(A, B, C, affinity=60)
    assert len({sticky.pick("127.0.0.1") for _ in range(6)}) == 1
    sticky.update((A, B, C), affinity_timeout=None)
    assert len({sticky.pick("127.0.0.1") for _ in range(6)}) == 3


def test_expired_affinities_are_swept_as_the_table_grows():
    clock = FakeClock()
    sticky = Balancer(clock=clock)
    sticky.update((A, B), affinity_timeout=1.0)
    for i in range(3000):
        sticky.pick(f"127.1.{i // 256}.{i % 256}")
        clock.advance(0.01)
    # Only clients seen in the last second can still be pinned; the table was swept down.
    assert len(sticky._affinity) < 1100
