{#- Trips and revenue per pickup zone, service and source year, rolled up from the monthly mart
    (a few thousand rows a year, not the year's trips); incremental by source year (var year).
    Tagged yearly: the monthly builds leave it out (transform/selectors.yml), taxi_models_yearly
    builds it once all twelve months' models are built. The averages are per trip: fare over
    the trips, distance as the monthly averages weighted by their trips. -#}
{{ config(tags=['yearly'], **year_incremental_config()) }}

select
  cast(extract(year from source_month) as {{ taxi_type('int') }}) as source_year,
  service,
  pickup_location_id,
  max(pickup_borough) as pickup_borough,
  max(pickup_zone) as pickup_zone,
  count(distinct source_month) as months,
  sum(trips) as trips,
  sum(fare_amount) as fare_amount,
  sum(tip_amount) as tip_amount,
  sum(revenue) as revenue,
  sum(fare_amount) / sum(trips) as avg_fare_amount,
  sum(avg_trip_distance * trips) / nullif(sum(case when avg_trip_distance is not null then trips end), 0) as avg_trip_distance
from {{ ref('mart_monthly_zone_revenue') }}
where {{ year_filter('source_month', months=true) }}
group by 1, service, pickup_location_id
