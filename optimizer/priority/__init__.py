"""Emergency-vehicle priority: safe preemption of the signals along a dispatched vehicle's route."""
