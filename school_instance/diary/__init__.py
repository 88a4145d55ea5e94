"""The e-diary: classes, students, guardians, lessons, attendance, announcements."""
