"""Dropping a poll's already delivered events before they are read: never a different outcome than reading them."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flow_mcp.flowhunt.cursor import Cursor, decode_cursor
from flow_mcp.flowhunt.wire import RawEvent, event_identity

from .test_turn_state_properties import turns

IDS = st.one_of(
    st.text(max_size=6),
    st.integers(min_value=-5, max_value=10**20),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=1),
)
STAMPS = st.one_of(
    st.integers(min_value=-5, max_value=10**17),
    st.sampled_from(["12", " 12", "12 ", "0", "", "-1", "1e3", "\uff11\uff12", "\u00b2", "9" * 16, "9" * 17, "0" * 40]),
    st.text(alphabet="0123456789 ", max_size=20),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=500, deadline=None)
@given(event_id=IDS, stamp=STAMPS, extra=st.dictionaries(st.sampled_from(["metadata", "credits", "x"]), IDS))
def test_an_identity_read_from_a_raw_item_is_the_one_validation_gives(event_id: Any, stamp: Any, extra: Any) -> None:
    item = {**extra, "event_id": event_id, "created_at_timestamp": stamp}
    identity = event_identity(item)
    if identity is None:
        return  # in doubt: the item is validated as before
    event = RawEvent.model_validate(item)
    assert (event.event_id, event.created_at_timestamp) == identity


def test_an_item_that_is_not_an_object_or_lacks_a_field_has_no_identity() -> None:
    assert event_identity(["e1", 5]) is None
    assert event_identity({"event_id": "e1"}) is None
    assert event_identity({"created_at_timestamp": 5}) is None
    assert event_identity({"event_id": "", "created_at_timestamp": 5}) is None  # RawEvent refuses an empty id
    assert event_identity({"event_id": 7, "created_at_timestamp": "5"}) == ("7", 5)


@settings(max_examples=300, deadline=None)
@given(
    events=turns(),
    seed=st.integers(min_value=0, max_value=2**32),
    inclusive=st.booleans(),
    spread=st.sampled_from([1, 700]),  # 700: a turn longer than the look-back window, so some events fall behind it
)
def test_leaving_out_what_the_cursor_delivered_changes_nothing_it_takes(
    events: list[RawEvent], seed: int, inclusive: bool, spread: int
) -> None:
    rng = random.Random(seed)
    events = [e.model_copy(update={"created_at_timestamp": e.created_at_timestamp * spread}) for e in events]
    last = events[-1].created_at_timestamp
    cursor = Cursor(timestamp=0)
    for reveal in sorted([rng.randint(1, last) for _ in range(6)] + [last]):
        visible = [e for e in events if e.created_at_timestamp <= reveal]
        bound = int(cursor.query_timestamp())
        batch = [
            e for e in visible if e.created_at_timestamp > bound or (inclusive and e.created_at_timestamp == bound)
        ]
        batch += rng.sample(visible, k=min(len(visible), rng.randint(0, 3)))  # re-sent, older ones too
        rng.shuffle(batch)
        limit = rng.choice([None, None, 1, 3])
        whole = cursor.take(batch, limit, now_ms=10**13)
        kept = [e for e in batch if not cursor.delivered(e.event_id, e.created_at_timestamp)]
        assert cursor.take(kept, limit, now_ms=10**13) == whole
        cursor = whole.cursor
        if rng.random() < 0.3:  # as a later call would have it: from its string form
            cursor = decode_cursor(cursor.encode())


def test_a_crowded_millisecond_read_back_from_a_cursor_string_is_still_known() -> None:
    # More ids at the cursor's timestamp than a string carries plainly: they come back as digests.
    crowd = [RawEvent(event_id=f"e{n}", created_at_timestamp=7) for n in range(40)]
    _, cursor = Cursor(timestamp=0).accept(crowd, now_ms=10**13)
    again = decode_cursor(cursor.encode())
    assert all(again.delivered(e.event_id, 7) for e in crowd)
    assert not again.delivered("e40", 7) and not again.delivered("e1", 8)
