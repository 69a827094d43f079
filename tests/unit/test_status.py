"""``streaming.status.committed_offsets``: a new Apache Kafka cluster's passing coordinator errors
are asked again; anything else, or the same error past the deadline, is raised."""

from __future__ import annotations

import pytest
from kafka import TopicPartition
from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    GroupAuthorizationFailedError,
    NotCoordinatorError,
)

from streaming.status import committed_offsets

PARTITIONS = [TopicPartition("traffic.detector.v1", 0)]


class Admin:
    """Answers ``list_group_offsets`` with the errors given, then with offsets."""

    def __init__(self, *errors: type[Exception]) -> None:
        self.errors = list(errors)
        self.calls = 0

    def list_group_offsets(self, wanted):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)()
        return {group: dict.fromkeys(partitions, 7) for group, partitions in wanted.items()}


def test_passing_coordinator_errors_are_asked_again(monkeypatch):
    monkeypatch.setattr("streaming.status.time.sleep", lambda _s: None)
    admin = Admin(CoordinatorNotAvailableError, NotCoordinatorError, CoordinatorLoadInProgressError)
    assert committed_offsets(admin, "g", PARTITIONS, timeout_s=30) == {PARTITIONS[0]: 7}
    assert admin.calls == 4


def test_other_errors_and_errors_past_the_deadline_are_raised(monkeypatch):
    monkeypatch.setattr("streaming.status.time.sleep", lambda _s: None)
    with pytest.raises(GroupAuthorizationFailedError):
        committed_offsets(Admin(GroupAuthorizationFailedError), "g", PARTITIONS, timeout_s=30)
    with pytest.raises(NotCoordinatorError):
        committed_offsets(Admin(*[NotCoordinatorError] * 1000), "g", PARTITIONS, timeout_s=0)
