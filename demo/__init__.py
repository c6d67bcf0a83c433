"""Demo data: a reproducible population and a year of pipeline for ``make run``.

Its own app, above the product apps: it writes through their services and
``seed_demo`` is its command; no product module imports it.
"""
