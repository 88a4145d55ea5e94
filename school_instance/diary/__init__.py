"""The e-diary's pages: classes, students and their guardians, lessons and attendance, news,
the admin's accounts and applications, and corrections of personal data (sent to Stuudium ID).
Imports the school instance's modules and shared/."""
