"""The numbers of a failover run: how many visitors and old sessions, when the fault comes, how
long failures are allowed around it, how long a person or a school retries, and the delivery
schedule of the test's IdP from which the latest allowed logout token follows."""

from __future__ import annotations

THREADS = 6  # visitors, each with a person of its own
OLD_SESSIONS = 3  # per visitor: signed in before the fault, signed in silently after it
FAULT_AFTER = 9.0  # seconds of load before the fault
LOAD_SECONDS = 25.0  # the load lasts at least this long in all
AFTER_WINDOW = 6.0  # and goes on at least this long after the window of allowed failures
GRACE = 5.0  # failures are allowed until this long after the new primary/master is in place
RECOVERY_LIMIT = 30.0  # the new primary/master must be in place within this after the fault
REQUEST_TIMEOUT = 15.0  # a request that gets no answer within this counts as a failure
RETRY_FOR = 10.0  # a person presses "log out" again (or a school retries) for this long
RETRY_PAUSE = 0.5
PAUSE_AFTER_FAILURE = 0.5  # a visitor waits this long after a failed journey
MIN_JOURNEYS = 50  # fewer finished journeys would make a pass vacuous
CODE_SLACK = 1.0  # a code issued this long before the fault may have been lost with it

# The delivery schedule of this test's IdP: the app (direct attempts) and its worker retry a
# failed delivery after BACKOFF seconds (doubling), and a worker's lease lapses after
# WORKER_LEASE seconds. idp/sso/logout.py _queue leases a logout's rows for its direct attempt
# for BACKCHANNEL_TIMEOUT + DIRECT_LEASE_EXTRA seconds; ROUND_SLACK covers one worker round.
BACKOFF = 1
WORKER_LEASE = 6
DIRECT_LEASE_EXTRA = 10.0
ROUND_SLACK = 2.0
