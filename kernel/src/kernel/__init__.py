"""CallManager."""
