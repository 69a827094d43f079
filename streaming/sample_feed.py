"""A deterministic sample feed for the demo, the benchmark and tests, until the SUMO twin exists.

It imitates a small signalised corridor: loop detectors reporting every minute, the signal
controllers' event logs, probe vehicles every few seconds, a weather station, an incident and
emergency dispatches, with a chosen share of broken records (not JSON, wrong shape, out-of-range
values, a local time zone) that the ingest must dead-letter. Every record it calls valid passes its contract.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from schemas import contract

#: Share of each topic in the mix: probes dominate, as they do in a real feed.
TOPIC_MIX = (
    ("operator.probe.v1", 0.44),
    ("traffic.detector.v1", 0.30),
    ("traffic.signal_event.v1", 0.20),
    ("public.weather.v1", 0.03),
    ("public.incident.v1", 0.02),
    ("operator.emergency.v1", 0.01),
)
CORRIDOR_ORIGIN = (31.2304, 121.4737)  # WGS84; the corridor lies east of it
START = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FeedRecord:
    topic: str
    key: bytes | None
    value: bytes
    valid: bool


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def detector(rng: random.Random, i: int) -> dict:
    junction = rng.randrange(6)
    lane = rng.randrange(3)
    count = rng.randint(0, 30)
    return {
        "schema_version": 1,
        "ts": _iso(START + timedelta(minutes=i // 200)),
        "detector_id": f"J{junction}_e{lane}",
        "intersection_id": f"J{junction}",
        "lane_id": f"approach_J{junction}_{lane}",
        "interval_s": 60,
        "count": count,
        "occupancy": round(min(1.0, count * 0.012 + rng.random() * 0.05), 3),
        "speed_mps": round(rng.uniform(3, 16), 2) if count else None,
        "source": "loop",
        "quality_flags": [] if rng.random() > 0.02 else ["estimated"],
    }


def signal_event(rng: random.Random, i: int) -> dict:
    """A controller's log line: mostly detector actuations, now and then a phase change."""
    actuation = rng.random() < 0.8
    return {
        "schema_version": 1,
        "ts": _iso(START + timedelta(seconds=i // 20, milliseconds=100 * rng.randrange(10))),
        "signal_id": f"J{rng.randrange(6)}",
        "event_code": rng.choice([81, 82]) if actuation else rng.choice([1, 8, 10]),
        "event_param": rng.randint(1, 16) if actuation else rng.choice([2, 4, 6, 8]),
        "source": "controller",
    }


def probe(rng: random.Random, i: int) -> dict:
    moving = rng.random() > 0.2
    return {
        "schema_version": 1,
        "ts": _iso(START + timedelta(seconds=i // 40)),
        "probe_id": f"p{rng.getrandbits(48):012x}",
        "lat": round(CORRIDOR_ORIGIN[0] + rng.uniform(-0.002, 0.002), 6),
        "lon": round(CORRIDOR_ORIGIN[1] + rng.uniform(0, 0.02), 6),
        "speed_mps": round(rng.uniform(2, 17), 2) if moving else 0.0,
        "heading_deg": round(rng.uniform(0, 359.9), 1) if moving else None,
        "accuracy_m": round(rng.uniform(2, 15), 1),
        "provider": "fleet_a",
    }


def weather(rng: random.Random, i: int) -> dict:
    rain = rng.random() < 0.3
    return {
        "schema_version": 1,
        "ts": _iso(START + timedelta(minutes=i // 10)),
        "station_id": f"ws{rng.randrange(2)}",
        "lat": CORRIDOR_ORIGIN[0],
        "lon": CORRIDOR_ORIGIN[1] + 0.01,
        "air_temp_c": round(rng.uniform(4, 12), 1),
        "precipitation_mm_h": round(rng.uniform(0.5, 6), 1) if rain else 0.0,
        "visibility_m": rng.choice([None, 8000.0, 12000.0]),
        "wind_speed_mps": round(rng.uniform(0, 8), 1),
        "road_surface": "wet" if rain else "dry",
        "condition": "rain" if rain else "cloudy",
    }


def incident(rng: random.Random, i: int) -> dict:
    began = START + timedelta(minutes=rng.randrange(120))
    return {
        "schema_version": 1,
        "ts": _iso(began + timedelta(minutes=1)),
        "incident_id": f"inc{i % 50}",
        "kind": rng.choice(["crash", "breakdown", "road_works"]),
        "status": rng.choice(["reported", "confirmed", "active", "cleared"]),
        "severity": rng.randint(1, 4),
        "lat": CORRIDOR_ORIGIN[0],
        "lon": round(CORRIDOR_ORIGIN[1] + rng.uniform(0, 0.02), 6),
        "edge_id": f"main_{rng.randrange(5)}",
        "lane_ids": [f"main_{rng.randrange(5)}_0"],
        "start": _iso(began),
        "end": None,
        "description": "reported by the sample feed",
        "source": "sample_feed",
    }


def emergency(rng: random.Random, i: int) -> dict:
    kind = rng.choice(["dispatch", "position", "position", "arrived"])
    return {
        "schema_version": 1,
        "ts": _iso(START + timedelta(seconds=i)),
        "dispatch_id": f"d{i % 20}",
        "vehicle_id": f"amb_{i % 4}",
        "vehicle_class": "ambulance",
        "kind": kind,
        "origin_edge": "main_0",
        "destination_edge": f"main_{rng.randrange(1, 5)}",
        "lat": CORRIDOR_ORIGIN[0],
        "lon": round(CORRIDOR_ORIGIN[1] + rng.uniform(0, 0.02), 6),
        "speed_mps": round(rng.uniform(0, 20), 1) if kind == "position" else None,
        "heading_deg": 90.0 if kind == "position" else None,
        "source": "sample_feed",
    }


MAKERS = {
    "traffic.detector.v1": detector,
    "traffic.signal_event.v1": signal_event,
    "operator.probe.v1": probe,
    "public.weather.v1": weather,
    "public.incident.v1": incident,
    "operator.emergency.v1": emergency,
}


def _break(rng: random.Random, record: dict) -> bytes:
    """One of the ways a real feed goes wrong; each breaks the contract."""
    flaw = rng.randrange(6)
    if flaw == 0:
        return orjson.dumps(record)[:-7]  # truncated in transit
    if flaw == 1:
        return orjson.dumps([record])  # wrong shape
    if flaw == 2:
        record.pop("ts")
    elif flaw == 3:
        record["ts"] = record["ts"].replace("Z", "+08:00")  # local time, not UTC
    elif flaw == 4:
        record["lat" if "lat" in record else "count"] = 1e9
    else:
        record["unexpected"] = True
    return orjson.dumps(record)


def generate(records: int, invalid_fraction: float = 0.0, seed: int = 7) -> Iterator[FeedRecord]:
    """``records`` feed records; exactly round(records * invalid_fraction) of them broken."""
    if not 0 <= invalid_fraction <= 1:
        raise ValueError(f"invalid_fraction must lie in [0, 1], got {invalid_fraction}")
    rng = random.Random(seed)
    broken = set(rng.sample(range(records), round(records * invalid_fraction)))
    topics = [t for t, _ in TOPIC_MIX]
    weights = [w for _, w in TOPIC_MIX]
    for i in range(records):
        topic = rng.choices(topics, weights)[0]
        record = MAKERS[topic](rng, i)
        key = contract(topic).key_of(record)
        if i in broken:
            yield FeedRecord(topic, key, _break(rng, record), valid=False)
        else:
            yield FeedRecord(topic, key, orjson.dumps(record), valid=True)
