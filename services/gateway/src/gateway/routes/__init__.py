"""HTTP routes of the public API, one router factory per area."""
