"""The methods that make plans and policies, each registered as a signal controller."""
