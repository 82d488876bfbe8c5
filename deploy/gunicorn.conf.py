"""gunicorn settings for intake behind Caddy (see deploy/README.md).

Installed as /etc/intake/gunicorn.conf.py and run by intake.service as
`gunicorn --config /etc/intake/gunicorn.conf.py`, with INTAKE_INSTANCE naming the instance
folder. A command-line option (for example --bind) overrides the same setting here.

Request bodies stay in memory. gunicorn reads a body from the socket only as the app asks
for it, into in-memory buffers (gunicorn/http/body.py and unreader.py: io.BytesIO); it has
no spill-to-disk path (its `tmp_upload_dir` setting is not used by any code). waitress, by
contrast, reads the whole body before calling the app and moves anything above
`inbuf_overflow` into a temporary file, which is why `intake serve` caps that threshold.
gunicorn has no body-size limit of its own: the app refuses bodies over
`limits.max_request_bytes` before reading them (MAX_CONTENT_LENGTH), Werkzeug parses forms in
memory up to MAX_FORM_MEMORY_SIZE, and Caddy refuses anything larger still (`request_body`).
"""

wsgi_app = "intake.wsgi:create()"

# Loopback only: Caddy is the one client, so the only address gunicorn's own warnings can
# name is 127.0.0.1. The complainant's address reaches the app only in the X-Forwarded-For
# header Caddy writes, for the per-client limits on guessing (SECURITY.md); gunicorn logs
# no header.
bind = ["127.0.0.1:8000"]

# Threads, so that a slow request holds one thread rather than a whole worker, and so that
# receipt-code hashes (argon2id, which releases the GIL) run in parallel. Each hash takes
# 64 MiB while it runs; each worker runs at most [capacity] hash_slots at once (one per
# core by default) and answers 503 beyond that, so hashing takes at most 2 x cores x 64 MiB
# (256 MiB on 2 cores). Keep threads above twice the slots, so that pages are served while
# every slot is busy (intake/capacity.py). The guessing limits are in the database: they
# hold across both workers.
worker_class = "gthread"
workers = 2
threads = 8

# Build the app once, in the master, before forking: schema migrations then run in one
# process instead of racing in each worker, and a configuration error stops start-up once,
# with its sentence. No database connection is open at fork time (create_app closes its
# own; requests open theirs), so nothing is shared between workers.
preload_app = True

# Recycle each worker after about a thousand requests. Python cannot wipe a string, so a
# no-JavaScript report's plaintext lingers in freed memory until it is reused; a worker
# that exits hands its memory back to the kernel, which clears it before reuse.
max_requests = 1000
max_requests_jitter = 100

# A restart (deploy, reload) lets requests in flight finish: an accepted report is never
# cut off halfway.
graceful_timeout = 30

# No access log. The design allows no client address, user agent, receipt code or report
# content in any log; the request line adds little to that list's complement (a time, a
# language, a report id in officers' URLs), and that little helps match visits against
# someone else's network logs. Caddy, in front, writes no access log either.
accesslog = None
# If an administrator turns the access log on anyway (accesslog = "-"), it gets this
# format: time, method, status, size and duration only. No %(h)s (client address), %(a)s
# (user agent), %(f)s (referrer), %(r)s / %(U)s / %(q)s (URL and query) or header atoms.
access_log_format = '%(t)s %(m)s %(s)s %(B)s %(M)sms'

# Errors and start-up lines go to standard error, which systemd sends to the journal.
# Keep the level at info: gunicorn's debug lines describe requests.
errorlog = "-"
loglevel = "info"

# gunicorn's control socket (for gunicornc) would be created under $HOME, which the
# systemd sandbox keeps read-only; systemd's reload (HUP) and restart are enough.
control_socket_disable = True

proc_name = "intake"
