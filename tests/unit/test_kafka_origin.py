"""Where a Kafka message was read, one typed value (`KafkaOrigin`), kept as the text it always was."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.kafka import KafkaOrigin, tracking_name

#: Kafka's legal topic names (a prefix included): letters, digits, `.`, `_` and `-`, up to 249 characters.
TOPICS = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"),
                 min_size=1, max_size=249)
ORIGINS = st.builds(KafkaOrigin, st.builds(tracking_name, TOPICS, st.integers(0, 10_000)),
                    st.integers(0, 2**63 - 1))


def test_the_stored_text_is_the_one_stored_before() -> None:
    # What parked messages stored before this type: `<tracking>@<offset>`, read back the same.
    assert str(KafkaOrigin(tracking_name("yaosu.portal.v1", 2), 41)) == "kafka:yaosu.portal.v1:2@41"
    assert KafkaOrigin.parse("kafka:yaosu.portal.v1:2@41") == KafkaOrigin("kafka:yaosu.portal.v1:2", 41)


def test_no_origin_is_stored_as_nothing() -> None:
    assert KafkaOrigin.parse("") is None


@given(ORIGINS)
def test_every_origin_reads_back_as_it_was_written(origin: KafkaOrigin) -> None:
    assert KafkaOrigin.parse(str(origin)) == origin


@pytest.mark.parametrize("text", ["kafka:yaosu.portal.v1:2", "@41", "kafka:yaosu.portal.v1:2@", "kafka:t:0@4x",
                                  "kafka:t:0@-1", "kafka:t:0@٤١", "kafka:t:0@ 41"])
def test_text_that_is_no_origin_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kafka origin"):
        KafkaOrigin.parse(text)
