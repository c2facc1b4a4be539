{#- Every trip of every service with its pickup and dropoff zone; incremental by source month:
    a run with var month rebuilds that month only, whatever else is loaded. -#}
{{ config(**month_incremental_config()) }}

with trips as (
  {%- for service in ['yellow', 'green', 'fhv', 'fhvhv'] %}
  select * from {{ ref('stg_' ~ service ~ '_trips') }} where {{ month_filter() }}
  {{ 'union all' if not loop.last }}
  {%- endfor %}
)

select
  trips.*,
  pickup.borough as pickup_borough,
  pickup.zone as pickup_zone,
  dropoff.borough as dropoff_borough,
  dropoff.zone as dropoff_zone
from trips
left join {{ ref('dim_zones') }} as pickup on trips.pickup_location_id = pickup.location_id
left join {{ ref('dim_zones') }} as dropoff on trips.dropoff_location_id = dropoff.location_id
