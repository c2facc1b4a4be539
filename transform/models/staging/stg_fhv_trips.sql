{#- For-hire vehicles: a base, the times and the zones; no fares in these files. -#}
{{ staging_trips('fhv', {
    'dispatching_base_num': 'dispatching_base_num',
    'pickup_datetime': 'pickup_datetime',
    'dropoff_datetime': 'dropoff_datetime',
    'pickup_location_id': 'pulocationid',
    'dropoff_location_id': 'dolocationid',
}) }}
