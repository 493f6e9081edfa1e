"""The per-key rate limit on Redis: fixed windows of the rate's duration, limited as a
sliding window (the previous window's count weighted by its share still within the last
duration), refused requests not counted, Retry-After when one more request fits."""

import pytest
import time_machine
from django.utils import timezone

from core.api.throttling import ApiKeyRateThrottle

pytestmark = pytest.mark.django_db

URL = "/payment/transactions"


def window_start() -> float:
    now = timezone.now().timestamp()
    return (now // 60 + 1) * 60  # the start of the next minute: a window of its own


def statuses(client, count: int) -> list[int]:
    return [client.get(URL).status_code for _ in range(count)]


def test_the_limit_slides_over_the_previous_window_and_refusals_do_not_count(merchant_a, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "10/min"})
    start = window_start()
    with time_machine.travel(start + 1, tick=False):
        # ten requests fit in the minute, the eleventh is refused with a Retry-After
        assert statuses(merchant_a.client, 11) == [200] * 10 + [429]
        refused = merchant_a.client.get(URL)
        assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    with time_machine.travel(start + 60 + 1, tick=False):
        # just after the window, the previous one still weighs almost fully: no room yet
        assert statuses(merchant_a.client, 1) == [429]
    with time_machine.travel(start + 60 + 30, tick=False):
        # half way through, it weighs half (5): five more fit, and the refusals above did
        # not count
        assert statuses(merchant_a.client, 6) == [200] * 5 + [429]
    with time_machine.travel(start + 120 + 59, tick=False):
        # in the next window, the previous window's 5 weigh 5/60 at its end: nine fit
        assert statuses(merchant_a.client, 10) == [200] * 9 + [429]
    with time_machine.travel(start + 240, tick=False):
        # once a whole window went by, nothing older weighs: ten fit again
        assert statuses(merchant_a.client, 11) == [200] * 10 + [429]


def test_retry_after_says_when_one_more_request_fits(merchant_a, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "4/min"})
    start = window_start()
    with time_machine.travel(start, tick=False):
        assert statuses(merchant_a.client, 4) == [200] * 4
    with time_machine.travel(start + 60 + 15, tick=False):
        # the previous 4 weigh 3 now: one fits, then the estimate is full
        assert statuses(merchant_a.client, 1) == [200]
        wait = int(merchant_a.client.get(URL)["Retry-After"])
    # the previous window must weigh at most 2 for another: 30 s into the window, 15 s from now
    assert wait == 15
    with time_machine.travel(start + 60 + 15 + wait, tick=False):
        assert statuses(merchant_a.client, 2) == [200, 429]
