{#- One name per type across Postgres, DuckDB and BigQuery (dbt's cross-database types). -#}
{% macro taxi_type(kind) %}
  {%- if kind == 'int' -%}{{ dbt.type_bigint() }}
  {%- elif kind == 'float' -%}{{ dbt.type_float() }}
  {%- elif kind == 'text' -%}{{ dbt.type_string() }}
  {%- elif kind == 'timestamp' -%}{{ 'datetime' if target.type == 'bigquery' else dbt.type_timestamp() }}
  {%- elif kind == 'date' -%}date
  {%- else -%}{{ exceptions.raise_compiler_error("unknown type " ~ kind) }}
  {%- endif -%}
{% endmacro %}
