"""Browser end-to-end tests: the real `make run` launcher driven by Debian's chromium."""
