"""The library producer: keyed records, ``acks=all``, idempotent retries, bounded buffering.

A record's key is its contract's stable id (detector, probe, station, incident, tls), so one
source stays in one partition and in order. The buffer is bounded: kafka-python 3 has no
memory cap of its own, so past ``max_pending`` unacknowledged records ``send`` waits for the
broker (up to the connect timeout) and then fails rather than growing without limit. Every
delivery failure is collected and raised by :meth:`RecordProducer.flush`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from core.errors import CitybrainError
from core.settings import Settings
from schemas import RecordInvalid, contract
from streaming.connection import connect

Headers = Sequence[tuple[str, bytes]]


class DeliveryFailed(CitybrainError, RuntimeError):
    """Some records were not acknowledged by the broker; the message counts and shows the first."""


class BadLine(CitybrainError, ValueError):
    """A line of JSON Lines input that is not JSON or breaks the contract; the message names it."""


class RecordProducer:
    """Produce contract records (or raw bytes) to citybrain topics."""

    def __init__(
        self,
        settings: Settings,
        *,
        validate: bool = True,
        max_pending: int = 50_000,
        delivery_timeout_ms: int = 60_000,
    ) -> None:
        self._validate = validate
        self._failures: list[Exception] = []
        self._max_pending = max_pending
        self._wait_s = settings.kafka_connect_timeout_s
        self.sent = 0
        self._acknowledged = 0  # written only by the client's sender thread
        self._producer = connect(
            settings,
            KafkaProducer,
            acks="all",
            enable_idempotence=True,  # retries cannot duplicate or reorder
            linger_ms=10,
            batch_size=256 << 10,
            metrics_enabled=False,
            max_block_ms=int(settings.kafka_connect_timeout_s * 1000),
            delivery_timeout_ms=delivery_timeout_ms,
        )

    def send(self, topic: str, record: dict[str, Any], headers: Headers = ()) -> None:
        """Validate (unless disabled) and send one record, keyed by its contract's id field."""
        topic_contract = contract(topic)
        if self._validate:
            topic_contract.validate(record)
        key = topic_contract.key_of(record) if topic_contract.key_field in record else None
        self.send_raw(topic, key, orjson.dumps(record), headers)

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers = (),
        partition: int | None = None,
    ) -> Any:
        """Send bytes as they are (replaying files, dead-lettering); return the delivery future."""
        if self.sent - self._acknowledged >= self._max_pending:
            self.flush(self._wait_s)  # raises DeliveryFailed if the broker does not catch up
        future = self._producer.send(topic, key=key, value=value, headers=list(headers), partition=partition)
        future.add_both(self._settled)
        self.sent += 1
        return future

    def _settled(self, outcome: object) -> None:
        self._acknowledged += 1
        if isinstance(outcome, Exception):
            self._failures.append(outcome)

    def send_all(self, topic: str, records: Iterable[dict[str, Any]]) -> int:
        count = 0
        for record in records:
            self.send(topic, record)
            count += 1
        return count

    def send_lines(self, topic: str, lines: Iterable[bytes], *, validate: bool, source: str) -> int:
        """Send JSON Lines as they are, keyed by the contract's id field, then flush; the count sent.

        Without ``validate`` a line that is not JSON goes unkeyed (the ingest dead-letters it, as
        it would a field feed's); with it, the first bad line stops the run with a
        :class:`BadLine` saying how many earlier records were sent (and flushed).
        """
        topic_contract = contract(topic)
        count = 0
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if validate:
                    raise self._bad_line(f"line {number} of {source} is not JSON: {exc}") from None
                self.send_raw(topic, None, line)
                count += 1
                continue
            if validate:
                try:
                    topic_contract.validate(record)
                except RecordInvalid as exc:
                    raise self._bad_line(f"line {number} of {source}: {exc}") from None
            key = record.get(topic_contract.key_field) if isinstance(record, dict) else None
            self.send_raw(topic, None if key is None else str(key).encode(), line)
            count += 1
        self.flush()
        return count

    def _bad_line(self, message: str) -> BadLine:
        self.flush()
        return BadLine(f"{message} ({self.sent} earlier records were sent)")

    def partitions_for(self, topic: str) -> set[int]:
        return self._producer.partitions_for(topic) or set()

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every record sent so far is acknowledged; raise if any was not."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError:
            raise DeliveryFailed(
                f"{self.sent - self._acknowledged} record(s) not acknowledged within {timeout_s:g} s"
            ) from None
        if self._failures:
            failures, self._failures = self._failures, []
            raise DeliveryFailed(
                f"{len(failures)} record(s) not acknowledged by Kafka; first: {failures[0]!r}"
            )

    def close(self, timeout_s: float | None = None) -> None:
        """Flush (raising what was not delivered), then release the client either way."""
        try:
            self.flush(timeout_s)
        finally:
            # After a failed flush the client's own close times out on the same records.
            with contextlib.suppress(KafkaTimeoutError):
                self._producer.close(timeout=timeout_s)

    def __enter__(self) -> RecordProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
