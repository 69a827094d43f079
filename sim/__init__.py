"""SUMO: scenarios, the simulation runner, controllers, KPIs and the sensor twin."""
