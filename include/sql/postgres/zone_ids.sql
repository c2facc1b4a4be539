-- The zone ids of the lookup, which trip zone ids are checked against (quality rule unknown_zone).
SELECT locationid FROM {zones} WHERE locationid IS NOT NULL;
