"""NYC TLC trip data pipeline: source files -> schema contract -> lake and warehouse.

Everything here runs without a scheduler; the DAGs in dags/ only wire these functions.
"""
