{#- The source year a yearly build rebuilds: var year, "YYYY"; none for every year (a
    deliberate full rebuild). -#}
{% macro taxi_year() %}
  {%- set raw = var('year', '') | string | trim -%}
  {%- if raw in ('', 'None', 'none') -%}
    {{ return(none) }}
  {%- endif -%}
  {%- if not modules.re.match('^[0-9]{4}$', raw) -%}
    {{ exceptions.raise_compiler_error("var year is '" ~ raw ~ "': expected YYYY, e.g. 2021") }}
  {%- endif -%}
  {{ return(raw | int) }}
{% endmacro %}

{#- A predicate keeping the rows of the year being built (all rows without var year): on
    `column` an integer year, or with `months` a date column, as a range of months so the
    source_month index serves it. -#}
{% macro year_filter(column='source_year', months=false) %}
  {%- set year = taxi_year() -%}
  {%- if year is none -%}
    1 = 1
  {%- elif months -%}
    {{ column }} >= cast('{{ year }}-01-01' as date) and {{ column }} < cast('{{ year + 1 }}-01-01' as date)
  {%- else -%}
    {{ column }} = {{ year }}
  {%- endif -%}
{% endmacro %}

{#- Incremental by source year, as month_incremental_config is by month: BigQuery overwrites
    the year's integer-range partition, the others delete the year (named as a constant, so the
    delete does not scan the table) and insert it again. -#}
{% macro year_incremental_config() %}
  {%- if target.type == 'bigquery' -%}
    {{ return({
      'materialized': 'incremental',
      'incremental_strategy': 'insert_overwrite',
      'partition_by': {'field': 'source_year', 'data_type': 'int64',
                       'range': {'start': 2009, 'end': 2100, 'interval': 1}},
      'on_schema_change': 'fail',
    }) }}
  {%- else -%}
    {{ return({
      'materialized': 'incremental',
      'incremental_strategy': 'delete+insert',
      'unique_key': 'source_year',
      'on_schema_change': 'fail',
      'incremental_predicates': [year_filter()],
      'indexes': [{'columns': ['source_year']}] if target.type == 'postgres' else [],
    }) }}
  {%- endif -%}
{% endmacro %}
