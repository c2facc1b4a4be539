"""An auth manager with DAG-level read permissions, for the Taxi months permission tests.

Airflow's SimpleAuthManager grants by role over every DAG at once (a viewer reads them all), so
it cannot show that a page checks the right DAGs; FAB and Keycloak need their own provider and
server. This subclass keeps SimpleAuthManager's users, tokens and login and only narrows
``is_authorized_dag``: each user reads (GET) the DAGs listed for them in ``READABLE_DAGS``,
nothing else. Plugged in with ``AIRFLOW__CORE__AUTH_MANAGER``.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

READABLE_DAGS: dict[str, frozenset[str]] = {
    "other_reader": frozenset({"other_dag"}),
    "postgres_reader": frozenset({"taxi_to_postgres"}),
    "taxi_reader": frozenset({"taxi_to_postgres", "taxi_to_lake", "lake_to_bigquery"}),
}
PATH = f"{__name__}.DagReaderAuthManager"


class DagReaderAuthManager(SimpleAuthManager):
    def is_authorized_dag(
        self,
        *,
        method: Any,
        user: SimpleAuthManagerUser,
        access_entity: Any = None,
        details: Any = None,
    ) -> bool:
        dag_id = details.id if details is not None else None
        return method == "GET" and dag_id in READABLE_DAGS.get(user.get_name(), frozenset())
