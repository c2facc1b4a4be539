# The Airflow image of docker-compose.yaml: the official image, extended as its docs describe
# ("Extending the image": pip install as the airflow user), with this project's code in it.
FROM apache/airflow:3.3.2-python3.11

# The whole lock, not a few extra packages: requirements.txt pins apache-airflow==3.3.2 (the
# version of this base image, which the explicit pin below holds to, failing the build if the
# two ever differ) and every other distribution, so the containers run the very versions the
# test suite ran against.
COPY --chown=airflow:root requirements.txt /requirements.txt
USER airflow
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt

# The project root is /opt/airflow: the DAGs import `include.taxi`. docker-compose.yaml mounts
# the same folders read-only over these copies for development.
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/

# dbt for taxi_models, in its own venv (its pins clash with Airflow's): Cosmos runs
# /opt/airflow/.venv-dbt/bin/dbt over /opt/airflow/transform.
COPY --chown=airflow:root dev/dbt/requirements.txt /dbt-requirements.txt
RUN python -m venv /opt/airflow/.venv-dbt \
    && /opt/airflow/.venv-dbt/bin/pip install --no-cache-dir -r /dbt-requirements.txt
COPY --chown=airflow:root transform/ /opt/airflow/transform/
ENV PYTHONPATH=/opt/airflow
