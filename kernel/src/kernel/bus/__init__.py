"""Message bus port and its adapters."""
