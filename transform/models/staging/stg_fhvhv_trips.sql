{#- High-volume for-hire (Uber, Lyft, Via): the rider's total is the base fare plus tolls,
    black-car fund, sales tax, congestion and airport fees and the tip. -#}
{{ staging_trips('fhvhv', {
    'dispatching_base_num': 'dispatching_base_num',
    'pickup_datetime': 'pickup_datetime',
    'dropoff_datetime': 'dropoff_datetime',
    'pickup_location_id': 'pulocationid',
    'dropoff_location_id': 'dolocationid',
    'trip_distance': 'trip_miles',
    'fare_amount': 'base_passenger_fare',
    'tip_amount': 'tips',
    'tolls_amount': 'tolls',
    'congestion_surcharge': 'congestion_surcharge',
    'airport_fee': 'airport_fee',
    'total_amount': 'coalesce(base_passenger_fare, 0) + coalesce(tolls, 0) + coalesce(bcf, 0) + coalesce(sales_tax, 0) + coalesce(congestion_surcharge, 0) + coalesce(airport_fee, 0) + coalesce(tips, 0)',
}) }}
