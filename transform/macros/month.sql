{#- The source month a run builds: var month ("YYYY-MM"), or none for every month. -#}
{% macro taxi_month() %}
  {%- set month = var('month', '') | string | trim -%}
  {%- if month in ('', 'None', 'none') -%}
    {{ return(none) }}
  {%- endif -%}
  {%- if not modules.re.match('^[0-9]{4}-(0[1-9]|1[0-2])$', month) -%}
    {{ exceptions.raise_compiler_error("var month is " ~ month ~ ": expected YYYY-MM, e.g. 2021-01") }}
  {%- endif -%}
  {{ return(month ~ '-01') }}
{% endmacro %}

{#- A predicate keeping the rows of the month being built (all rows without a month). -#}
{% macro month_filter(column='source_month') %}
  {%- set first_day = taxi_month() -%}
  {%- if first_day is none -%}
    1 = 1
  {%- else -%}
    {{ column }} = cast('{{ first_day }}' as date)
  {%- endif -%}
{% endmacro %}

{#- Incremental by source month: BigQuery overwrites the month's partition, the others delete
    the month and insert it again (one transaction in Postgres). -#}
{% macro month_incremental_config() %}
  {%- if target.type == 'bigquery' -%}
    {{ return({
      'materialized': 'incremental',
      'incremental_strategy': 'insert_overwrite',
      'partition_by': {'field': 'source_month', 'data_type': 'date', 'granularity': 'month'},
      'on_schema_change': 'fail',
    }) }}
  {%- else -%}
    {{ return({
      'materialized': 'incremental',
      'incremental_strategy': 'delete+insert',
      'unique_key': 'source_month',
      'on_schema_change': 'fail',
      'indexes': [{'columns': ['source_month']}] if target.type == 'postgres' else [],
    }) }}
  {%- endif -%}
{% endmacro %}
