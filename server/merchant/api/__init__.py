"""The admin API's children, mounted in ``doors.api`` (Bearer), one module per noun."""
