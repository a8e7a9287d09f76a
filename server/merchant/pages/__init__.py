"""The dashboard's children, mounted in ``doors.dashboard`` (log-in, CSRF, headers), one module per page group."""
