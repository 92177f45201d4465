"""Generator service: valid Costa Rican mobile numbers by operator.

``ranges`` holds the operators and their number ranges as data, ``draw`` the pure drawing functions, and
``service`` the entry point the gateway and the CLI call (weights from settings, existing-contact checks).
"""
