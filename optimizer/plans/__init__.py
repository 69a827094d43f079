"""Plans: the model, the safety rules every plan passes, plans as SUMO tlLogic programs."""
