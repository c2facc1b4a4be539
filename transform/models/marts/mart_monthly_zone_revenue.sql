{#- Trips and revenue per pickup zone, service and source month (the course's monthly zone
    revenue); incremental by source month like fct_trips. -#}
{{ config(**month_incremental_config()) }}

select
  source_month,
  service,
  pickup_location_id,
  max(pickup_borough) as pickup_borough,
  max(pickup_zone) as pickup_zone,
  count(*) as trips,
  sum(fare_amount) as fare_amount,
  sum(extra) as extra,
  sum(mta_tax) as mta_tax,
  sum(tip_amount) as tip_amount,
  sum(tolls_amount) as tolls_amount,
  sum(ehail_fee) as ehail_fee,
  sum(improvement_surcharge) as improvement_surcharge,
  sum(congestion_surcharge) as congestion_surcharge,
  sum(airport_fee) as airport_fee,
  sum(total_amount) as revenue,
  avg(passenger_count) as avg_passenger_count,
  avg(trip_distance) as avg_trip_distance
from {{ ref('fct_trips') }}
where {{ month_filter() }}
group by source_month, service, pickup_location_id
