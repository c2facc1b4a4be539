{#- The taxi zones (the lookup is replaced whole with every load, so this is rebuilt whole). -#}
select location_id, borough, zone, service_zone
from {{ ref('stg_zones') }}
