"""View models: one per screen, pure Python (no Tk), driven by tests with a fake gateway."""
