"""Search by simulation: CMA-ES within a budget, a method's search, and region by region."""
