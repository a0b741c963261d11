"""Answer formats shared by the fronts: numbers as JSON and CSV text, CoverageJSON objects
(KNMI's covjson-pydantic models) and OpenAPI pieces, so EDR and ``/api/timeseries`` write
the same values, parameters and reference systems the same way.
"""
