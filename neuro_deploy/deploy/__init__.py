"""Deployment planning: how a network maps onto Loihi 2 cores and chips, how long it runs, what static power costs."""
