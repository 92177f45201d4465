"""Views: CustomTkinter widgets that show view models and forward user input to them; no network code."""
