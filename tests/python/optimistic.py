"""SQLAlchemy sessions through Lagless with `[routing] optimistic_transactions = true`.

Run by crates/lagless/tests/optimistic.rs against its own sandbox and proxy:
    python optimistic.py --port PORT [--host 127.0.0.1]
A SQLAlchemy session over PyMySQL runs with autocommit off: its first read opens a transaction,
which Lagless opens on a replica. Prints one line per check and a closing 'N passed, N failed'
line; exits 1 if any failed.
"""

import time

import pymysql
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from checks import check, main


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "py_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    balance: Mapped[int]


def engine(args):
    return sa.create_engine(f"mysql+pymysql://app:lagless@{args.host}:{args.port}/app")


def lagless_status(conn, name):
    for key, value in conn.exec_driver_sql("SHOW LAGLESS STATUS"):
        if key == name:
            return value
    raise AssertionError(f"no {name} in SHOW LAGLESS STATUS")


def until_replica_reads(session):
    """Reads go to the primary until a replica has the session's last write (gtid mode)."""
    deadline = time.time() + 10
    sql = sa.text("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES "
                  "WHERE VARIABLE_NAME = 'SERVER_ID'")
    while session.execute(sql).scalar() == "1":
        session.rollback()
        assert time.time() < deadline, "no replica caught up"
        time.sleep(0.01)
    session.rollback()


@check
def read_only_session_stays_on_a_replica_and_a_write_moves(args):
    eng = engine(args)
    Base.metadata.drop_all(eng)
    Base.metadata.create_all(eng)
    with Session(eng) as s:
        s.add_all([Account(id=1, balance=100), Account(id=2, balance=50)])
        s.commit()
    with Session(eng) as s:
        until_replica_reads(s)
        total = s.execute(sa.select(sa.func.sum(Account.balance))).scalar()
        assert total == 150, total
        where = lagless_status(s.connection(), "session_transaction_server")
        assert where.endswith("(optimistic)"), where
        s.commit()
        moved = int(lagless_status(s.connection(), "optimistic_moved"))
        s.rollback()
        # The ORM's unit of work: read, change, flush (UPDATE), commit.
        until_replica_reads(s)
        a = s.get(Account, 1)
        a.balance -= 30
        s.get(Account, 2).balance += 30
        s.commit()
        assert int(lagless_status(s.connection(), "optimistic_moved")) == moved + 1
        s.rollback()
    with eng.connect() as c:
        rows = c.execute(sa.text("SELECT id, balance FROM py_accounts ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, 70), (2, 80)], rows


@check
def a_concurrent_change_is_a_deadlock_error_and_the_retry_works(args):
    eng = engine(args)
    with Session(eng) as s:
        until_replica_reads(s)
        a = s.get(Account, 1)
        seen = a.balance
        other = pymysql.connect(host=args.host, port=args.port, user="app", password="lagless",
                                database="app", autocommit=True)
        with other, other.cursor() as cur:
            cur.execute("UPDATE py_accounts SET balance = balance + 1 WHERE id = 1")
        a.balance = seen - 10
        try:
            s.commit()
        except sa.exc.OperationalError as e:
            assert e.orig.args[0] == 1213, e.orig.args
            s.rollback()
        else:
            raise AssertionError("a write based on a stale read was committed")
        # The retry, as an application does it: read again, write again.
        a = s.get(Account, 1)
        a.balance -= 10
        s.commit()
    with eng.connect() as c:
        balance = c.execute(sa.text("SELECT balance FROM py_accounts WHERE id = 1")).scalar()
        assert balance == 61, balance


if __name__ == "__main__":
    main()
