{#- The source months a run builds: var month, one "YYYY-MM" or several comma-separated
    (asset events batched into one run); none for every month. Returns first days. -#}
{% macro taxi_months() %}
  {%- set raw = var('month', '') | string | trim -%}
  {%- if raw in ('', 'None', 'none') -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set days = [] -%}
  {%- for month in raw.split(',') -%}
    {%- set month = month | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-(0[1-9]|1[0-2])$', month) -%}
      {{ exceptions.raise_compiler_error("var month is '" ~ raw ~ "': expected YYYY-MM (or several, comma-separated), e.g. 2021-01") }}
    {%- endif -%}
    {%- do days.append(month ~ '-01') -%}
  {%- endfor -%}
  {{ return(days | unique | list | sort) }}
{% endmacro %}

{#- A predicate keeping the rows of the months being built (all rows without var month). -#}
{% macro month_filter(column='source_month') %}
  {%- set days = taxi_months() -%}
  {%- if days is none -%}
    1 = 1
  {%- else -%}
    {{ column }} in ({% for day in days %}cast('{{ day }}' as date){{ ', ' if not loop.last }}{% endfor %})
  {%- endif -%}
{% endmacro %}

{#- Incremental by source month: BigQuery overwrites the month's partition, the others delete
    the month and insert it again (one transaction in Postgres). The predicate names the month
    as a constant in the delete: without it Postgres' planner hash-joins dbt's
    "source_month in (select ... from the new rows)" against a sequential scan of the whole
    table, so a month's build grew with the months loaded (make bench-models). -#}
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
      'incremental_predicates': [month_filter()],
      'indexes': [{'columns': ['source_month']}] if target.type == 'postgres' else [],
    }) }}
  {%- endif -%}
{% endmacro %}
