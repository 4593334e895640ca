"""The bc-authorize INSERT alone, as the group commit writes it: batches of rows of
ciba_requests in one ``executemany`` and one commit on a SQLite file with the provider's schema
and PRAGMAs (WAL checkpoints on the process's thread, as in production). Prints, for the
batches written while the table grows through 10^3, 10^4 and 10^5 rows, µs per row (wall; the
caller's CPU in executemany and commit; the process's CPU, its checkpoint thread and the making
of the rows included), the bytes written per row (WAL frames and checkpoint copies), and the
process's RSS.

    python bench/ciba_insert.py [--rows 100000] [--batch 30] [--keys random|ordered]
                                [--pragma cache_size=-65536 ...] [--drop-index NAME ...]

``--keys random``: the three lookup keys as before round 6 (a 64-hex digest of a random secret
for auth_req_id_hash and approval_token_hash, a random device_request_id): each row's entry
lands on a random leaf page of each of the three unique indexes. ``ordered``: the keys as
server/oauth/request_ids.py makes them now (time-ordered, so each index grows at its right edge).
``--pragma`` runs on every connection after the provider's own (e.g. ``cache_size=-65536``,
``mmap_size=268435456``); ``--drop-index`` drops an index after the schema is made, to see
what it costs.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.oauth import request_ids  # noqa: E402
from server.security import digest, new_id  # noqa: E402
from server.storage import ciba_requests, prepared  # noqa: E402
from server.storage.db import Database  # noqa: E402
from server.storage.models import Client, User  # noqa: E402

MARKS = (1_000, 10_000, 100_000, 1_000_000)


def row_values(keys: str, now: float) -> dict:
    if keys == "random":
        ids = {"id": ciba_requests.new_row_id(), "auth_req_id_hash": digest(new_id(32)),
               "device_request_id": new_id(24), "approval_token_hash": digest(new_id(32))}
    else:
        auth_req_id = request_ids.new_auth_req_id()
        made = request_ids.companions(auth_req_id)
        ids = {"id": made.row_id, "auth_req_id_hash": request_ids.key(auth_req_id),
               "device_request_id": made.device_request_id,
               "approval_token_hash": request_ids.key(made.approval_token)}
    row = dict.fromkeys(ciba_requests._COLUMNS)
    row.update(ids, client_id="bench-client", user_id="bench-user", scope="openid",
               delivery_mode="poll", created_at=now, expires_at=now + 300, interval=5,
               status="pending", binding_message=None)
    return row


def _written() -> int:
    """Bytes this process passed to write() so far: the WAL frames and the checkpoints' copies."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=30)
    ap.add_argument("--keys", choices=("random", "ordered"), default="random")
    ap.add_argument("--pragma", action="append", default=[])
    ap.add_argument("--drop-index", action="append", default=[])
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ciba-insert-") as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db", checkpoint_thread=True)
        for pragma in args.pragma:
            event.listen(db.engine, "connect",
                         lambda dbapi, _r, p=pragma: dbapi.execute(f"PRAGMA {p}"))
        db.create_all()
        with db.session() as s:
            s.add(User(id="bench-user", username="bench", password_hash="-", created_at=0))
            s.add(Client(client_id="bench-client", auth_method="client_secret_basic",
                         grant_types="", scope="openid", created_at=0))
        with db.engine.begin() as conn:
            for name in args.drop_index:
                conn.execute(text(f"DROP INDEX {name}"))
        sql = ciba_requests._INSERT_PREPARED.args(db.engine, row_values("random", 0))[0]
        written, walls, cpus, wchar, proc = 0, [], [], _written(), time.process_time()
        mark = iter(MARKS)
        upto = next(mark)
        print(f"keys={args.keys} batch={args.batch} pragmas={args.pragma or '-'} "
              f"dropped={args.drop_index or '-'} (uptime: {os.getloadavg()[0]:.1f})")
        while written < args.rows:
            now = time.time()
            batch = [ciba_requests._INSERT_PREPARED.args(db.engine, row_values(args.keys, now))[1]
                     for _ in range(args.batch)]
            w0, c0 = time.perf_counter(), time.thread_time()
            with prepared.raw(db.engine, commit=True) as cursor:
                cursor.executemany(sql, batch)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.thread_time() - c0)
            written += args.batch
            if written >= upto or written >= args.rows:
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                n = len(walls) * args.batch
                print(f"  rows {written - n:>7,}-{written:>7,}: wall {sum(walls) / n * 1e6:6.1f} "
                      f"µs/row (median batch {statistics.median(walls) / args.batch * 1e6:5.1f}), "
                      f"caller CPU {sum(cpus) / n * 1e6:6.1f} µs/row, "
                      f"process CPU {(time.process_time() - proc) / n * 1e6:6.1f} µs/row, "
                      f"written {(_written() - wchar) / n / 1024:4.1f} KiB/row, "
                      f"max RSS {rss:.0f} MiB")
                walls, cpus, wchar, proc = [], [], _written(), time.process_time()
                upto = next(mark, args.rows)
        db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
