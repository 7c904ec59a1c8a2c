"""sloguard: a streaming SLO monitoring daemon with exact event-time error budgets and burn rates."""

__version__ = "0.1.0"

__all__ = ["__version__"]
