"""The transform layer: the dbt project in transform/, run by Cosmos (taxi_models) or by hand."""
