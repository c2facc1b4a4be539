select
  cast(locationid as {{ taxi_type('int') }}) as location_id,
  cast(borough as {{ taxi_type('text') }}) as borough,
  cast(zone as {{ taxi_type('text') }}) as zone,
  cast(service_zone as {{ taxi_type('text') }}) as service_zone
from {{ source('raw', 'taxi_zone_lookup') }}
