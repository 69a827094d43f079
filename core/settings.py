"""The one settings object: everything configurable, read from ``CITYBRAIN_*`` variables.

Two profiles, in the manner of environment resources: ``local`` (the default) fills every
gap with an embedded service under ``var/`` so one machine runs the whole flow; ``production``
fills nothing and refuses to start until the external services are named, so a missing
variable is an error at start rather than a silent local fallback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Tansu completes a group join only after the rebalance timeout (kafka-python's
#: ``max_poll_interval_ms``), so against the embedded broker it must be seconds, not minutes.
EMBEDDED_MAX_POLL_INTERVAL_MS = 6_000
KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS = 300_000


class Settings(BaseSettings):
    """citybrain configuration; every field is ``CITYBRAIN_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CITYBRAIN_", extra="ignore")

    profile: Literal["local", "production"] = "local"
    var_dir: Path = Field(Path("var"), description="Runtime state, logs and the local lake.")

    kafka_bootstrap: str | None = Field(
        None, description="host:port[,host:port] of an external Kafka; unset runs the embedded broker."
    )
    kafka_connect_timeout_s: float = Field(10.0, gt=0, description="How long to wait for a broker.")
    kafka_max_poll_interval_ms: int | None = Field(
        None, ge=1000, description="Consumer rebalance timeout; defaults by broker kind."
    )
    kafka_session_timeout_ms: int | None = Field(
        None,
        ge=1000,
        description="How long a consumer that stopped heartbeating keeps its partitions; default "
        "10 s (against Tansu at least the poll interval, 6 s at least: the broker's floor).",
    )
    topic_partitions: int = Field(3, ge=1, le=1024, description="Partitions of each created topic.")
    kafka_broker_kind: Literal["tansu", "kafka"] = Field(
        "tansu",
        description="Which broker `citybrain broker start` runs when no external Kafka is named: the "
        "embedded Tansu (memory only) or Apache Kafka (KRaft, jars from pom.xml, data in var/kafka).",
    )
    kafka_broker_heap: str = Field("512m", description="JVM heap of a locally started Apache Kafka.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every Kafka client here talks to the brokers."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism when the security protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user of the Kafka clients.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password of the Kafka clients.")
    kafka_ssl_cafile: Path | None = Field(
        None, description="PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL)."
    )
    jvm_dir: Path = Field(
        Path(__file__).resolve().parents[1] / ".jvm",
        description="Where `make setup` resolved pom.xml's JVM programs, one folder a profile.",
    )

    lake_uri: str | None = Field(None, description="Root of the data lake; default var/lake.")
    lake_tables_uri: str | None = Field(
        None,
        description=(
            "Where the silver and gold Delta tables live when not in the lake folder: "
            "s3a://bucket/prefix on object storage (S3, MinIO), or a path."
        ),
    )
    s3_endpoint: str | None = Field(
        None, description="S3 endpoint of an object store other than AWS (MinIO, Ceph): http(s)://host:port."
    )
    s3_region: str = Field("us-east-1", description="S3 region of the tables' bucket.")
    s3_access_key_id: str | None = Field(
        None, description="S3 access key; unset: the AWS default credential chain (instance role, AWS_*)."
    )
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret key, with the access key.")
    s3_path_style: bool = Field(
        False, description="Address buckets by path (http://host/bucket), as MinIO and other stores need."
    )
    spark_master: str = Field(
        "local[*]", description="Spark master of the lake jobs (local[*], spark://, k8s://)."
    )
    spark_driver_memory: str = Field("2g", description="Driver memory of a local Spark session.")
    spark_shuffle_partitions: int = Field(
        8, ge=1, description="Shuffle partitions of the lake jobs: a few per core, more on a cluster."
    )
    controller_modules: str = Field(
        "",
        description="Comma-separated modules or .py files whose controllers register themselves.",
    )
    lake_network: str = Field(
        "corridor", description="Scenario whose SUMO net the lake maps probes and detectors onto."
    )
    signal_config: Path | None = Field(
        None,
        description=(
            "Signal configuration file (phases, overlaps, detector channels per signal) for the lake's "
            "network; default: derived from the network (`citybrain signals config` writes it to edit)."
        ),
    )
    lake_watermark_s: int = Field(
        900, ge=0, description="Records arriving later than this after their interval are left out as late."
    )
    lake_match_distance_m: float = Field(
        30.0, gt=0, description="Farthest a probe point may lie from the edge it is matched to."
    )
    lake_heading_tolerance_deg: float = Field(
        60.0, gt=0, le=180, description="Most a probe's heading may differ from its edge's direction."
    )
    lake_stuck_intervals: int = Field(
        10, ge=2, description="Identical non-empty detector readings in a row that flag a stuck detector."
    )
    lake_detector_effective_length_m: float = Field(
        20.0,
        gt=0,
        description="Effective vehicle length (m) of the loops' occupancy speed model: a site calibration.",
    )
    lake_crash_at: str | None = Field(
        None, description="Fault injection for tests: the lake write step at which to SIGKILL itself."
    )
    lake_freshness_max_s: int = Field(
        3600, ge=0, description="lake check fails a table whose newest row is older than this."
    )
    ingest_health_max_lag: int = Field(
        100_000, ge=0, description="Consumer lag (records) above which citybrain_ingest_health fails."
    )
    ingest_health_max_dead_letters: int = Field(
        1_000, ge=0, description="Dead letters per health check above which citybrain_ingest_health fails."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the project database (plans, users, audit): sqlite:///path or "
        "postgresql+psycopg://user:password@host:5432/db.",
    )
    console_session_lifetime_s: int = Field(
        8 * 3600, ge=60, description="How long a console login lasts: an operator's shift."
    )
    console_login_max_failures: int = Field(
        5,
        ge=1,
        description="Failed console logins per account, and per address, within the window after "
        "which further attempts are refused (429).",
    )
    console_login_window_s: int = Field(
        300, ge=1, description="The window (s) in which failed console logins are counted."
    )
    console_max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request body the console accepts (413 beyond)."
    )
    optimizer_executor: Literal["auto", "local", "spark"] = Field(
        "auto",
        description="Where candidate simulations run: a local process pool, Spark tasks, or "
        "auto (Spark when spark_master is a cluster, else local).",
    )
    optimizer_budget_minutes: float = Field(
        5.0, gt=0, description="Wall time a search may take when a controller needs one and none is stored."
    )
    optimizer_workers: int | None = Field(
        None, ge=1, description="Processes of the local executor; default one per core."
    )
    optimizer_region_signals: int = Field(
        12,
        ge=1,
        description="Most signals the city pipeline searches together: a network with more is cut "
        "into regions, searched concurrently with their boundary flows from the lake.",
    )
    incident_budget_minutes: float = Field(
        2.0, gt=0, description="Wall time of the plan search for an incident's nearby signals."
    )
    incident_seeds: int = Field(
        5, ge=2, description="Seeds an incident plan is evaluated on against the current plan."
    )
    incident_radius_m: float = Field(
        600.0, gt=0, description="Signals within this distance of a closed road are re-planned for it."
    )
    incident_max_signals: int = Field(
        6, ge=1, description="Most signals re-planned for one incident (the nearest first)."
    )
    incident_default_minutes: float = Field(
        60.0,
        gt=0,
        description="How long an incident plan is valid when the report gives no expected end.",
    )
    ntcip_controllers: str = Field(
        "",
        description="Where the ntcip field adapter reaches each signal's controller: comma-separated "
        "tls_id=host:port, and at most one bare host:port for every signal not named (one agent "
        "serving several signals, each under the community <ntcip_community>@<tls_id>).",
    )
    ntcip_community: str = Field("public", description="SNMPv2c community of the NTCIP controllers.")
    ntcip_timeout_s: float = Field(
        2.0, gt=0, description="How long the ntcip adapter waits for a controller's SNMP response."
    )
    ntcip_retries: int = Field(1, ge=0, description="SNMP requests the ntcip adapter resends unanswered.")
    ntcip_confirm_timeout_s: float = Field(
        900.0,
        gt=0,
        description="How long after calling a pattern the ntcip adapter waits for the controller to "
        "run it before the application fails: a transition takes a few cycles.",
    )

    field_watch_window_s: int = Field(
        3600,
        # field.watch.MIN_SLOTS quarter hours a side: a shorter window could never reach a verdict.
        ge=3600,
        description="The field's watcher compares a plan's approach delay over this long after it took "
        "effect with as long before it (whole quarter hours of gold; at least an hour, the four "
        "quarter hours a side a verdict needs).",
    )
    field_rollback_worse_share: float = Field(
        0.10,
        ge=0,
        description="The watcher restores the previous plan when delay after is worse than before by more "
        "than this share of it ...",
    )
    field_rollback_p_value: float = Field(
        0.05, gt=0, lt=1, description="... and the difference is significant at this level (Welch's t-test)."
    )

    ingest_group: str = "citybrain-ingest"
    ingest_batch_records: int = Field(
        5_000, ge=1, description="Records per bronze file per partition, at most."
    )
    ingest_linger_ms: int = Field(
        500, ge=0, description="Longest a record waits for its batch to fill before landing."
    )
    ingest_max_inflight_batches: int = Field(
        16, ge=1, description="Batches handed to the writer but not yet durable, at most."
    )
    ingest_commit_interval_ms: int = Field(
        1_000, ge=0, description="Least time between offset commits; landed batches wait at most this."
    )
    ingest_status_interval_s: float = Field(5.0, gt=0, description="How often counters are logged.")
    ingest_crash_at: str | None = Field(
        None, description="Fault injection for tests: the ingest step at which to SIGKILL itself."
    )

    @model_validator(mode="after")
    def _production_names_its_services(self) -> Settings:
        if self.profile == "production":
            missing = [
                f"CITYBRAIN_{name.upper()}"
                for name in ("kafka_bootstrap", "lake_uri", "database_url")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    "the production profile runs no embedded services; set " + ", ".join(missing)
                )
        return self

    @model_validator(mode="after")
    def _sasl_names_its_user(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"CITYBRAIN_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "CITYBRAIN_KAFKA_SASL_USERNAME and CITYBRAIN_KAFKA_SASL_PASSWORD"
            )
        return self

    @property
    def embedded_broker(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def max_poll_interval_ms(self) -> int:
        if self.kafka_max_poll_interval_ms is not None:
            return self.kafka_max_poll_interval_ms
        if self.embedded_broker:
            return EMBEDDED_MAX_POLL_INTERVAL_MS
        return KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS

    @property
    def session_timeout_ms(self) -> int:
        if self.kafka_session_timeout_ms is not None:
            return self.kafka_session_timeout_ms
        return min(max(self.max_poll_interval_ms, 6_000), 10_000)

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def sim_dir(self) -> Path:
        """Built own scenarios and simulation outputs (trip info, statistics)."""
        return self.var_dir / "sim"

    @property
    def controller_module_list(self) -> list[str]:
        return [spec.strip() for spec in self.controller_modules.split(",") if spec.strip()]

    @property
    def airflow_home(self) -> Path:
        """AIRFLOW_HOME of the embedded Airflow (SQLite metadata, logs), inside the var folder."""
        return self.var_dir / "airflow"

    @property
    def lake_path(self) -> Path:
        """The lake root as a local path: bronze's home, and the tables' unless ``lake_tables_uri``
        puts them elsewhere (:func:`lake.location.tables_location`)."""
        uri = self.lake_uri or str(self.var_dir / "lake")
        parsed = urlsplit(uri)
        if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
            return Path(url2pathname(parsed.path))
        if "://" in uri:
            raise ValueError(
                f"CITYBRAIN_LAKE_URI={uri!r}: the ingest writes bronze to a local or mounted "
                "file system only (file:///path or /path); the silver and gold tables can go to "
                "object storage with CITYBRAIN_LAKE_TABLES_URI=s3a://bucket/prefix"
            )
        return Path(uri)

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'citybrain.db').resolve()}"
