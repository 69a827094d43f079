"""The Airflow DAGs: thin wiring around steps that live in ``lake/`` and ``streaming/``.

A package (rather than loose files) so that every DAG imports the lake's asset definitions from one
module, :mod:`dags.assets`, under one name, both in Airflow and in the tests.
"""
