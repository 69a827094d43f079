"""Fixtures of the console's tests: a fresh database with its people, and the app on it.
A module may override ``settings`` (the API's tests lower the limits)."""

import pytest

from console.app import create_app
from core import database
from core.settings import Settings
from tests.unit.console.plans_and_users import add_people


@pytest.fixture
def settings(tmp_path):
    return Settings(var_dir=tmp_path / "var")


@pytest.fixture
def engine(settings):
    engine = database.open_database(settings)
    add_people(engine)
    return engine


@pytest.fixture
def app(settings, engine):
    return create_app(settings)
