"""The state DB backends the tests run on: SQLite always, PostgreSQL when TAPEWATCH_TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool

# Read at import: the clean_env fixture removes every TAPEWATCH_* variable before each test.
TEST_DATABASE_URL = os.environ.get("TAPEWATCH_TEST_DATABASE_URL") or None
BACKENDS = ["sqlite", "postgresql"] if TEST_DATABASE_URL else ["sqlite"]


def pg_schema_url(schema_name: str) -> str:
    """The test database's URL with ``schema_name`` as the only schema on its search path."""
    assert TEST_DATABASE_URL is not None
    # The application name marks the test's sessions, so its teardown can end exactly those.
    url = make_url(TEST_DATABASE_URL).update_query_dict({"options": f"-csearch_path={schema_name}",
                                                         "application_name": schema_name})
    return url.render_as_string(hide_password=False)


def database_toml(state_url: str) -> str:
    """The settings line that points a child process at ``state_url`` ("" for the default SQLite file)."""
    return "" if state_url.startswith("sqlite") else f"database_url = {state_url!r}\n"


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows ``sql`` selects on the state DB at ``url`` (none while its table does not exist yet)."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 5} if url.startswith("sqlite") else {})
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    except (OperationalError, ProgrammingError):  # a table not created yet (or the file not there)
        return []
    finally:
        engine.dispose()
