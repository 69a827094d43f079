"""Airflow for the DAG tests: the shared fixtures of :mod:`tests.unit.dags.airflow_env`."""

from tests.unit.dags.airflow_env import airflow_db, airflow_environment, airflow_home, dagbag

__all__ = ["airflow_db", "airflow_environment", "airflow_home", "dagbag"]
