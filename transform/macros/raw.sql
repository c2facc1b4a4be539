{#- Where the raw tables are: the pipeline's tables in Postgres and BigQuery, the lake's parquet
    in DuckDB (sources.yml points each raw table at read_parquet over the lake folder). -#}
{% macro lake_glob(table) %}
  {%- set lake = (var('lake', '') or env_var('TAXI_LAKE', '')) | string -%}
  {%- if table == 'taxi_zone_lookup' -%}
    {{ return(lake ~ '/misc/taxi_zone_lookup.parquet') }}
  {%- endif -%}
  {%- set service = table.replace('_tripdata', '') -%}
  {{ return(lake ~ '/' ~ service ~ '/*/' ~ service ~ '_tripdata_*.parquet') }}
{% endmacro %}

{#- Whether a raw table exists (a service never loaded has none): its staging model is then
    empty instead of failing the whole build. Always true while parsing. -#}
{% macro raw_exists(relation, table) %}
  {%- if not execute -%}
    {{ return(true) }}
  {%- elif target.type == 'duckdb' -%}
    {%- set found = run_query("select count(*) from glob('" ~ lake_glob(table) ~ "')") -%}
    {{ return(found.columns[0].values()[0] > 0) }}
  {%- else -%}
    {{ return(adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier) is not none) }}
  {%- endif -%}
{% endmacro %}

{#- The columns every staging model has, in this order, with their types (fct_trips unions
    them). -#}
{% macro trip_columns() %}
  {{ return([
    ('vendor_id', 'int'),
    ('dispatching_base_num', 'text'),
    ('pickup_datetime', 'timestamp'),
    ('dropoff_datetime', 'timestamp'),
    ('pickup_location_id', 'int'),
    ('dropoff_location_id', 'int'),
    ('passenger_count', 'int'),
    ('trip_distance', 'float'),
    ('rate_code_id', 'int'),
    ('store_and_fwd_flag', 'text'),
    ('payment_type', 'int'),
    ('trip_type', 'int'),
    ('fare_amount', 'float'),
    ('extra', 'float'),
    ('mta_tax', 'float'),
    ('tip_amount', 'float'),
    ('tolls_amount', 'float'),
    ('ehail_fee', 'float'),
    ('improvement_surcharge', 'float'),
    ('congestion_surcharge', 'float'),
    ('airport_fee', 'float'),
    ('total_amount', 'float'),
  ]) }}
{% endmacro %}

{#- A staging select: the service's raw table renamed and typed into trip_columns(), with the
    service and source month; `expressions` maps a column to its SQL over the raw table (a
    column not named is NULL for this service). -#}
{% macro staging_trips(service, expressions) %}
  {%- set table = service ~ '_tripdata' -%}
  {%- set relation = source('raw', table) -%}
  {%- set present = raw_exists(relation, table) -%}
select
  cast('{{ service }}' as {{ taxi_type('text') }}) as service,
  {{ 'source_month' if present else 'cast(null as date)' }} as source_month,
  {%- for name, kind in trip_columns() %}
  cast({{ expressions.get(name, 'null') if present else 'null' }} as {{ taxi_type(kind) }}) as {{ name }}{{ ',' if not loop.last }}
  {%- endfor %}
from {{ relation if present else '(select 1 as one) as nothing' }}
{%- if not present %}
where 1 = 0
{%- endif %}
{% endmacro %}
