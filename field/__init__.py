"""The field: approved plans carried to the signals (the SUMO twin, or controllers over NTCIP 1202)."""
