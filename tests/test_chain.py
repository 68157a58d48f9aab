"""The hash chain lives in the domain, once: the batch hasher links as `event_hash` does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sladeck.domain.chain import GENESIS, chain_hasher, event_hash

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))


@given(text, st.none() | text, st.lists(st.tuples(
    st.integers(1, 2**63 - 1), st.integers(1, 2**63 - 1), st.integers(0, 10**6), text,
    text, text), max_size=5))
def test_a_batch_links_as_one_event_at_a_time(account, name, events) -> None:
    link = chain_hasher(account, name)
    prev = GENESIS
    for event_id, incident_id, version, at, kind, payload in events:
        digest = link(prev, event_id, incident_id, version, at, kind, payload)
        assert digest == event_hash(prev, event_id, incident_id, version, at, account, name,
                                    kind, payload)
        prev = digest


def test_unusual_types_fall_back_to_the_json_text() -> None:
    link = chain_hasher("acct", None)
    assert link(GENESIS, True, 1, 1, "at", "note", "{}") == \
        event_hash(GENESIS, True, 1, 1, "at", "acct", None, "note", "{}")
    assert chain_hasher(7, None)(GENESIS, 1, 1, 1, "at", "note", "{}") == \
        event_hash(GENESIS, 1, 1, 1, "at", 7, None, "note", "{}")
